"""The small genome, annotation and VCF of tests/fixtures/spliceai_vcf_reference, and what the official
spliceai 1.3.1 wrote for each record (expected.json, made by scripts/make_spliceai_vcf_reference.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import FIXTURES

REF_DIR = FIXTURES / "spliceai_vcf_reference"
EXPECTED = json.loads((REF_DIR / "expected.json").read_text())["records"]
BY_ID = {r["line"].split("\t")[2]: r for r in EXPECTED}
# records the official tool leaves without a SpliceAI entry, and the MetaLayerSkip reason metalayer gives them
SKIP_REASON = {
    "ref_mismatch": "ref_mismatch",
    "lowercase_ref": "ref_mismatch",
    "symbolic": "symbolic_allele",
    "partly_symbolic": "symbolic_allele",
    "outside_genes": "outside_genes",
    "ref_too_long": "ref_too_long",
    "no_alt": "no_alt",
    "near_contig_end": "near_contig_end",
    "unknown_contig": "contig_not_in_fasta",
    "contig_not_in_fasta": "contig_not_in_fasta",
}
MALFORMED = "1\tnot_a_number\tbad_pos\tA\tG\t50\tPASS\t."


def copy_genome(directory: Path) -> Path:
    """ref.fa + annotation.txt in a writable directory (the FASTA index is created beside it)."""
    for name in ("ref.fa", "annotation.txt"):
        shutil.copy(REF_DIR / name, directory / name)
    return directory


def write_input(path: Path, ids: list[str] | None, malformed: bool = True, extra: list[str] = ()) -> list[str]:
    """The fixture VCF restricted to ``ids`` (plus every unscorable record and a malformed line, and ``extra``
    record lines at the end); returns the body lines."""
    lines = (REF_DIR / "input.vcf").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    if ids is not None:
        keep = set(ids) | set(SKIP_REASON)
        body = [ln for ln in body if ln.split("\t")[2] in keep]
    if malformed:
        body.insert(1, MALFORMED)
    body += list(extra)
    path.write_text("\n".join(header + body) + "\n")
    return body


def info_of(columns: list[str]) -> dict[str, str | None]:
    entries = [] if columns[7] == "." else columns[7].split(";")
    return {e.split("=", 1)[0]: (e.split("=", 1)[1] if "=" in e else None) for e in entries}


def without_command(path: Path) -> list[str]:
    """The output's lines but its ``##metalayer_command`` line (which names the call's own arguments)."""
    return [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("##metalayer_command=")]


def score_fixture_vcf(folder: Path, genome: Path, out: Path | None = None, **options):
    """``score_vcf`` of ``folder / "in.vcf"`` (what ``write_input`` wrote) on the fixture genome in ``genome``
    (``copy_genome``) into ``out`` (default ``folder / "out.vcf"``), without a progress bar; ``options`` go to
    ``score_vcf`` as they are. Returns its summary."""
    from meta_layer_cli.inference.vcf import score_vcf

    out = folder / "out.vcf" if out is None else out
    return score_vcf(folder / "in.vcf", out, genome / "ref.fa", genome / "annotation.txt", progress=False, **options)


def score_vcf_args(vcf: Path, out: Path, ref: Path, annotation: Path, *options: str) -> list[str]:
    """The ``score-vcf`` command line of ``vcf`` into ``out`` on ``ref`` and ``annotation``, then ``options``."""
    return ["score-vcf", "-I", str(vcf), "-O", str(out), "-R", str(ref), "-A", str(annotation), *options]
