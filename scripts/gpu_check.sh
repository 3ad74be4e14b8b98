#!/usr/bin/env bash
# The GPU check, in one run on a machine with a CUDA GPU: tests/test_cuda.py, then the whole command-line chain
# with --device cuda on a genome, every step timed (the rates feed the "one GPU" column of the GRCh38 projection
# in scripts/RESULTS.md).
#
#   FASTA=genome.fna.gz GTF=genes.gtf.gz TEST_CHROMS=LR999452.1 WEIGHTS=../shared/models/openspliceai-mane \
#   CHECKPOINT=runs/cpu/checkpoints/best WORK=/tmp/gpu-check bash scripts/gpu_check.sh
#
# WEIGHTS holds OpenSpliceAI's 80nt/ (and, optionally, 10000nt/) folders. CHECKPOINT (optional) is a checkpoint
# trained elsewhere, on the CPU say: it is evaluated and predicted with here, so that its evaluation
# can be compared number for number with the CPU's on the same prepared genes. TRAIN_MINUTES (default 2) bounds
# the GPU training run. METALAYER (default `metalayer`) is the command to run. Each step's wall time is printed as
# `== STEP: N s (rc R)` on stderr (a step's stdout can be redirected: evaluate's JSON); the steps' own progress lines give nucleotides per second.
set -u
: "${FASTA:?}" "${GTF:?}" "${TEST_CHROMS:?}" "${WEIGHTS:?}" "${WORK:?}"
CHECKPOINT="${CHECKPOINT:-}"
TRAIN_MINUTES="${TRAIN_MINUTES:-2}"
read -r -a M <<< "${METALAYER:-metalayer}"
mkdir -p "$WORK"
REPO="$(cd "$(dirname "$0")/.." && pwd)"  # the paths above stay relative to where the script was started

step() {  # step NAME TIMEOUT_S COMMAND...: run, print wall time and exit status; never stop the script
    local name=$1 limit=$2 start rc
    shift 2
    echo "== $name: $*" >&2
    start=$(date +%s.%N)
    timeout "$limit" "$@"
    rc=$?
    echo "== $name: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s (rc $rc)" >&2
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
step pytest-cuda 240 bash -c "cd '$REPO' && python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py"
step prepare-80nt 240 "${M[@]}" prepare -b openspliceai --weights "$WEIGHTS/80nt" -R "$FASTA" -A "$GTF" \
    --device cuda --out "$WORK/prepared-80nt"
if [ -n "$CHECKPOINT" ]; then
    step evaluate-checkpoint 180 "${M[@]}" evaluate --checkpoint "$CHECKPOINT" --data "$WORK/prepared-80nt" \
        --device cuda --json > "$WORK/evaluate-checkpoint.json"
    step predict-checkpoint 240 "${M[@]}" predict --checkpoint "$CHECKPOINT" --data "$WORK/prepared-80nt" \
        --out "$WORK/predict.parquet" --device cuda
    ls -l "$WORK/predict.parquet"
fi
step train-canonical 400 "${M[@]}" train-canonical --data "$WORK/prepared-80nt" --test-chroms "$TEST_CHROMS" \
    --max-minutes "$TRAIN_MINUTES" --profile gpu --device cuda --out "$WORK/run"
step evaluate-trained 180 "${M[@]}" evaluate --checkpoint "$WORK/run/checkpoints/best" --data "$WORK/prepared-80nt" \
    --device cuda --json > "$WORK/evaluate-trained.json"
step calibrate-trained 180 "${M[@]}" calibrate --checkpoint "$WORK/run/checkpoints/best" \
    --data "$WORK/prepared-80nt" --out "$WORK/calibrated" --device cuda --overwrite
if [ -d "$WEIGHTS/10000nt" ]; then
    step prepare-10000nt 300 "${M[@]}" prepare -b openspliceai --weights "$WEIGHTS/10000nt" -R "$FASTA" -A "$GTF" \
        --device cuda --out "$WORK/prepared-10000nt"
fi
echo "== done"
