"""Break one guarded behaviour at a time, run the test that guards it, restore: every test must fail.

Shows that the tests named below catch the correctness traps they exist for (issue: "a test suite
that would catch a regression"). Each mutation is an exact text replacement in one source file; the
file is restored with ``git checkout`` whatever happens. The replaced text must occur exactly once,
so a mutation that no longer matches the code is reported (exit 1), never silently skipped.

    python scripts/mutation_checks.py            # all
    python scripts/mutation_checks.py 0 4        # by index

Prints one line per mutation (``caught`` when its test failed) and exits 1 if any survived. Run it on
a clean working tree: it refuses files with uncommitted changes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (what breaks, file, text, replacement, test that must fail)
MUTATIONS = [
    ("minus-strand scores not flipped back", "meta_layer_cli/base_models/base.py",
     'return scores[::-1].copy() if strand == "-" else scores', "return scores.copy()",
     "tests/base_models/test_predict_sequence.py"),
    ("minus-strand genes of a GTF not reverse-complemented", "meta_layer_cli/io/genes.py",
     'if transcript.strand == "-":', "if False:",
     "tests/jobs/test_prepare.py::test_prepared_genes_equal_the_demo_genes_on_both_strands"),
    ("Pangolin tissue heads mixed up", "meta_layer_cli/base_models/pangolin.py",
     "tissue = model_index // 2\n", "tissue = (model_index // 2 + 1) % len(CHANNELS)\n",
     "tests/base_models/test_pangolin_reference.py"),
    ("weights loaded with weights_only=False", "meta_layer_cli/base_models/torch_weights.py",
     "weights_only=True)", "weights_only=False)",
     "tests/base_models/test_weights_safety.py"),
    ("base-model record check disabled", "meta_layer_cli/base_models/record.py",
     "        if diff:\n            raise InputDataError(", "        if False:\n            raise InputDataError(",
     "tests/jobs/test_canonical.py::test_predict_refuses_tracks_of_other_weights_or_the_wrong_number_of_folders"),
    ("score-vcf keeps an earlier run's fields", "meta_layer_cli/inference/vcf.py",
     "writer.write(record, info, remove=OWN_FIELDS)", "writer.write(record, info, remove=())",
     "tests/inference/test_vcf.py::test_samples_kept_and_the_tools_own_fields_replaced"),
    ("evaluate drops unknown gene ids silently", "meta_layer_cli/jobs/canonical.py",
     "        unknown = [g for g in genes if g not in finished]\n",
     "        genes = [g for g in genes if g in finished]\n        unknown = []\n",
     "tests/jobs/test_canonical.py::test_evaluate_refuses_unknown_genes_and_an_empty_list"),
    ("no gene-structure decoder (meta model alone)", "meta_layer_cli/jobs/canonical.py",
     "    if structure:\n        t = time.perf_counter()", "    if False:\n        t = time.perf_counter()",
     "tests/jobs/test_canonical.py::test_meta_layer_beats_the_base_model_on_the_held_out_chromosome"),
    ("indel realignment misses 1-nt shifts", "meta_layer_cli/features/variants.py",
     "    for d in range(1, max_shift + 1):\n        v = n - s - d",
     "    for d in range(2, max_shift + 1):\n        v = n - s - d",
     "tests/features/test_variants.py::test_realign_shifted_indels_on_vexseq"),
    ("score-vcf: minus-strand ALT allele not reverse-complemented", "meta_layer_cli/inference/vcf_scorer.py",
     "len(region.codes) - v - t.ref_len, reverse_complement(block)", "len(region.codes) - v - t.ref_len, block",
     "tests/inference/test_vcf.py::test_spliceai_matches_official_on_every_record"),
    ("score-vcf: -M 1 masks like -M 0", "meta_layer_cli/inference/spliceai_format.py",
     "    m = int(mask)\n", "    m = 0\n",
     "tests/inference/test_vcf.py::test_spliceai_matches_official_on_every_record"),
    ("meta model initialised from the global generator, not the config's seed", "meta_layer_cli/jobs/canonical.py",
     'update={"channels": channels}), seed=cfg.training.seed)', 'update={"channels": channels}))',
     "tests/jobs/test_canonical.py::test_a_rerun_of_the_config_trains_the_same_model"),
    ("FASTA index left to htslib (written in place, never rebuilt when stale)", "meta_layer_cli/io/fasta.py",
     "            ensure_fasta_index(self.path)\n", "            pass\n",
     "tests/io/test_fasta.py::test_an_index_older_than_the_fasta_is_rebuilt"),
]  # fmt: skip


def main(argv: list[str]) -> int:
    chosen = [int(a) for a in argv] if argv else range(len(MUTATIONS))
    survived = 0
    for i in chosen:
        what, name, old, new, test = MUTATIONS[i]
        path = REPO / name
        dirty = subprocess.run(["git", "status", "--porcelain", "--", name], cwd=REPO, capture_output=True, text=True)
        if dirty.stdout.strip():
            print(f"[{i}] {what}: {name} has uncommitted changes; refusing to mutate it")
            survived += 1
            continue
        text = path.read_text()
        if text.count(old) != 1:
            print(f"[{i}] {what}: the text to replace occurs {text.count(old)} times in {name} (update this script)")
            survived += 1
            continue
        started = time.perf_counter()
        path.write_text(text.replace(old, new))
        try:
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", test],
                                 cwd=REPO, capture_output=True, text=True)  # fmt: skip
        finally:
            subprocess.run(["git", "checkout", "--", name], cwd=REPO, check=True)
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        caught = run.returncode != 0
        survived += not caught
        print(f"[{i}] {what}: {'caught' if caught else 'SURVIVED'} ({lines[-1] if lines else 'no output'}; "
              f"{time.perf_counter() - started:.0f} s) by {test}")  # fmt: skip
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
