"""The scorer's batching: shared reference regions and incremental ALT tracks equal one variant at a time."""

from __future__ import annotations

import pytest

from meta_layer_cli.inference.vcf import score_vcf
from tests.inference.stub_models import StubModel
from tests.inference.vcf_fixtures import info_of, without_command, write_input


@pytest.mark.parametrize("mask", [False, True])
def test_shared_reference_batching_equals_one_at_a_time(osai80, genome, tmp_path, mask):
    """Real weights (OpenSpliceAI 80 nt, cheap), every record of the fixture: batched == naive, entry for entry."""
    body = write_input(tmp_path / "in.vcf", None)
    outs = {}
    for batched, incremental in ((True, True), (True, False), (False, False)):
        outs[batched, incremental] = tmp_path / f"out_{batched}_{incremental}.vcf"
        score_vcf(
            tmp_path / "in.vcf",
            outs[batched, incremental],
            genome / "ref.fa",
            genome / "annotation.txt",
            base_model=osai80,
            mask=mask,
            progress=False,
            batched=batched,
            incremental=incremental,
            batch_size=3,
        )
    batched_lines = without_command(outs[True, True])
    assert batched_lines == without_command(outs[False, False])
    assert batched_lines == without_command(outs[True, False])
    scored = [ln for ln in batched_lines if "SpliceAI=" in ln and not ln.startswith("#")]
    assert len(scored) >= 15
    assert len([ln for ln in batched_lines if not ln.startswith("#")]) == len(body)


def test_stub_batched_equals_naive_both_model_kinds(genome, tmp_path):
    write_input(tmp_path / "in.vcf", None)
    for channels in (("neither", "acceptor", "donor"), ("heart", "liver", "brain", "testis")):
        model = StubModel(channels, context=7)
        lines = []
        for batched in (True, False):
            out = tmp_path / f"{len(channels)}_{batched}.vcf"
            score_vcf(
                tmp_path / "in.vcf",
                out,
                genome / "ref.fa",
                genome / "annotation.txt",
                base_model=model,
                distance=20,
                progress=False,
                batched=batched,
            )
            lines.append("\n".join(without_command(out)))
        assert lines[0] == lines[1]
        fields = [
            e.split("|")
            for ln in lines[0].splitlines()
            if not ln.startswith("#")
            for k, v in info_of(ln.split("\t")).items()
            if k == "SpliceAI"
            for e in v.split(",")
        ]
        numeric = [f for f in fields if f[2] != "."]
        assert numeric and all(-20 <= int(p) <= 20 for f in numeric for p in f[6:])
        if len(channels) == 4:  # tissue models: gain fills AG and DG, loss fills AL and DL
            assert all(f[2] == f[4] and f[3] == f[5] and f[6] == f[8] and f[7] == f[9] for f in numeric)
