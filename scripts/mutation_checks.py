"""Break one guarded behaviour at a time, run the test that guards it, restore: every test must fail.

Shows that the tests named below catch the correctness traps they exist for (a leak of test genes into a
choice, a strand flip, an upward import, ...). Each mutation is an exact text replacement in one source
file; the file is restored with ``git checkout`` whatever happens. The replaced text must occur exactly
once, so a mutation that no longer matches the code is reported, never silently skipped.

First a **baseline**: every guarding test must pass on the unmutated tree (in one pytest run; with
``CI=true``, so a missing ``../shared`` file fails instead of skipping). Then each mutation counts as
``caught`` only when pytest reports a failed test (exit code 1 with ``N failed``); a collection error, a
misspelt test id (exit 4), no test selected (exit 5), an error in a fixture or a skip are errors of this
script or of its list, reported as ``ERROR``, never as a catch.

    python scripts/mutation_checks.py            # all
    python scripts/mutation_checks.py 0 4        # by index
    python scripts/mutation_checks.py --list     # what each one breaks

Prints one line per mutation and ``caught K/N``; exits 0 when all were caught, 1 when one survived, 2 on an
error (baseline failing, text not found, uncommitted changes, a run that was not a clean pass or failure).
Run it on a clean working tree: it refuses files with uncommitted changes. It takes about 10 minutes on 2
CPU cores (one pytest process per mutation), so it runs as a nightly job (README, "Tests"), not in CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (what breaks, file, text, replacement, test that must fail)
MUTATIONS = [
    (
        "minus-strand scores not flipped back",
        "meta_layer_cli/base_models/base.py",
        'return scores[::-1].copy() if strand == "-" else scores',
        "return scores.copy()",
        "tests/base_models/test_predict_sequence.py",
    ),
    (
        "minus-strand genes of a GTF not reverse-complemented",
        "meta_layer_cli/io/genes.py",
        'if transcript.strand == "-":',
        "if False:",
        "tests/jobs/test_prepare.py::test_prepared_genes_equal_the_demo_genes_on_both_strands",
    ),
    (
        "Pangolin tissue heads mixed up",
        "meta_layer_cli/base_models/pangolin.py",
        "tissue = model_index // 2\n",
        "tissue = (model_index // 2 + 1) % len(CHANNELS)\n",
        "tests/base_models/test_pangolin_reference.py",
    ),
    (
        "weights loaded with weights_only=False",
        "meta_layer_cli/base_models/torch_weights.py",
        "weights_only=True)",
        "weights_only=False)",
        "tests/base_models/test_weights_safety.py",
    ),
    (
        "base-model record check disabled",
        "meta_layer_cli/base_models/record.py",
        "        if diff:\n            raise InputDataError(",
        "        if False:\n            raise InputDataError(",
        "tests/jobs/test_canonical.py::test_predict_refuses_tracks_of_other_weights_or_the_wrong_number_of_folders",
    ),
    (
        "score-vcf keeps an earlier run's fields",
        "meta_layer_cli/inference/vcf.py",
        "writer.write(record, info, remove=(*OWN_FIELDS, *FORMER_FIELDS))",
        "writer.write(record, info, remove=())",
        "tests/inference/test_vcf.py::test_samples_kept_and_the_tools_own_fields_replaced",
    ),
    (
        "evaluate drops unknown gene ids silently",
        "meta_layer_cli/jobs/canonical.py",
        "        unknown = [g for g in genes if g not in finished]\n",
        "        genes = [g for g in genes if g in finished]\n        unknown = []\n",
        "tests/jobs/test_canonical.py::test_evaluate_refuses_unknown_genes_and_an_empty_list",
    ),
    (
        "no gene-structure decoder (meta model alone)",
        "meta_layer_cli/jobs/canonical.py",
        "    search = StructureSearch() if structure else None\n    sample = grid_sample(",
        "    search = None\n    sample = grid_sample(",
        "tests/jobs/test_canonical.py::test_meta_layer_beats_the_base_model_on_the_held_out_chromosome",
    ),
    (
        "indel realignment misses 1-nt shifts",
        "meta_layer_cli/features/variants.py",
        "    for d in range(1, max_shift + 1):\n        v = n - s - d",
        "    for d in range(2, max_shift + 1):\n        v = n - s - d",
        "tests/features/test_variants.py::test_realign_shifted_indels_on_vexseq",
    ),
    (
        "score-vcf: minus-strand ALT allele not reverse-complemented",
        "meta_layer_cli/inference/vcf_scorer.py",
        "len(region.codes) - v - t.ref_len, reverse_complement(block)",
        "len(region.codes) - v - t.ref_len, block",
        "tests/inference/test_vcf.py::test_spliceai_matches_official_on_every_record",
    ),
    (
        "score-vcf: -M 1 masks like -M 0",
        "meta_layer_cli/inference/spliceai_format.py",
        "    m = int(mask)\n",
        "    m = 0\n",
        "tests/inference/test_vcf.py::test_spliceai_matches_official_on_every_record",
    ),
    (
        "meta model initialised from the global generator, not the config's seed",
        "meta_layer_cli/jobs/canonical.py",
        'update={"channels": channels}), seed=cfg.training.seed)',
        'update={"channels": channels}))',
        "tests/jobs/test_canonical.py::test_a_rerun_of_the_config_trains_the_same_model",
    ),
    (
        "FASTA index left to htslib (written in place, never rebuilt when stale)",
        "meta_layer_cli/io/fasta.py",
        "            ensure_fasta_index(self.path)\n",
        "            pass\n",
        "tests/io/test_fasta.py::test_an_index_older_than_the_fasta_is_rebuilt",
    ),
    # leaks of held-out data into a choice made on other data
    (
        "F1-optimal thresholds chosen on the test genes",
        "meta_layer_cli/evaluation/evaluator.py",
        "gene_probabilities(model, channels, validation_genes, device, structure, calibration, val_p)",
        "gene_probabilities(model, channels, test_genes, device, structure, calibration, test_p)",
        "tests/evaluation/test_evaluator.py::test_thresholds_are_chosen_on_the_validation_genes",
    ),
    (
        "feature normaliser fitted on the validation genes",
        "meta_layer_cli/training/trainer.py",
        "for _, t, _ in sampler.batches(c.normalizer_chunks",
        "for _, t, _ in val_sampler.batches(c.normalizer_chunks",
        "tests/training/test_trainer.py::test_the_feature_normaliser_is_fitted_on_training_genes_only",
    ),
    (
        "predict --variants ignores the checkpoint's isotonic map",
        "meta_layer_cli/inference/variant_models.py",
        "                if iso is not None:\n                    delta = iso(delta)",
        "                if False:\n                    delta = iso(delta)",
        "tests/jobs/test_variants.py::test_calibrated_delta_models",
    ),
    # the package's shape
    (
        "upward import inside a function of io/contigs.py, through the package root",
        "meta_layer_cli/io/contigs.py",
        "def strip_chr(name: str) -> str:\n",
        "def _reach_the_jobs():\n    from meta_layer_cli import run_demo\n\n    return run_demo\n\n\n"
        "def strip_chr(name: str) -> str:\n",
        "tests/test_structure.py::test_imports_point_down",
    ),
    (
        "import cycle closed inside a function (tracks format -> gene sources)",
        "meta_layer_cli/artifacts/tracks.py",
        "def gene_file_name(gene_id: str) -> str:\n",
        "def _sources():\n    from meta_layer_cli.artifacts import sources\n\n    return sources\n\n\n"
        "def gene_file_name(gene_id: str) -> str:\n",
        "tests/test_structure.py::test_no_import_cycles_between_modules",
    ),
]

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs"]


def _pytest(tests: list[str], extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "true"}  # a missing ../shared file fails the baseline instead of skipping
    return subprocess.run([*PYTEST, *extra, *tests], cwd=REPO, capture_output=True, text=True, env=env)


def _counts(output: str) -> dict[str, int]:
    """``{"failed": 1, "passed": 3, ...}`` from pytest's summary line."""
    lines = [line for line in output.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (failed|passed|errors?|skipped|deselected)", last)}


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "no output"


def baseline(chosen: list[int]) -> str | None:
    """None when every guarding test passes unmutated, else why not."""
    tests = sorted({MUTATIONS[i][4] for i in chosen})
    run = _pytest(tests)
    counts = _counts(run.stdout)
    if run.returncode != 0 or counts.get("skipped") or counts.get("error") or counts.get("errors"):
        return f"exit {run.returncode}, {_last_line(run.stdout)}\n{run.stdout[-3000:]}{run.stderr[-2000:]}"
    return None


def check(i: int) -> str:
    """``caught``, ``SURVIVED`` or ``ERROR: ...`` for mutation ``i``."""
    what, name, old, new, test = MUTATIONS[i]
    path = REPO / name
    dirty = subprocess.run(["git", "status", "--porcelain", "--", name], cwd=REPO, capture_output=True, text=True)
    if dirty.stdout.strip():
        return f"ERROR: {name} has uncommitted changes; refusing to mutate it"
    text = path.read_text()
    if text.count(old) != 1:
        return f"ERROR: the text to replace occurs {text.count(old)} times in {name} (update this script)"
    path.write_text(text.replace(old, new))
    try:
        run = _pytest([test], ("-x",))
    finally:
        subprocess.run(["git", "checkout", "--", name], cwd=REPO, check=True)
    counts = _counts(run.stdout)
    summary = _last_line(run.stdout)
    if run.returncode == 1 and counts.get("failed", 0) > 0:
        return f"caught ({summary})"
    if run.returncode == 0 and not counts.get("skipped"):
        return f"SURVIVED ({summary})"
    return f"ERROR: exit {run.returncode}, not a clean pass or failure ({summary})"


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for i, (what, name, _, _, test) in enumerate(MUTATIONS):
            print(f"[{i}] {what} ({name}) -> {test}")
        return 0
    chosen = [int(a) for a in argv] if argv else list(range(len(MUTATIONS)))
    started = time.perf_counter()
    failed_baseline = baseline(chosen)
    if failed_baseline is not None:
        print(f"baseline: the guarding tests do not pass unmutated: {failed_baseline}")
        return 2
    print(f"baseline: every guarding test passes unmutated ({time.perf_counter() - started:.0f} s)")
    caught = survived = errors = 0
    for i in chosen:
        t = time.perf_counter()
        outcome = check(i)
        caught += outcome.startswith("caught")
        survived += outcome.startswith("SURVIVED")
        errors += outcome.startswith("ERROR")
        print(f"[{i}] {MUTATIONS[i][0]}: {outcome}; {time.perf_counter() - t:.0f} s, {MUTATIONS[i][4]}", flush=True)
    print(
        f"caught {caught}/{len(chosen)}"
        + (f", {survived} survived" if survived else "")
        + (f", {errors} errors" if errors else "")
        + f" ({time.perf_counter() - started:.0f} s)"
    )
    return 2 if errors else (1 if survived else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
