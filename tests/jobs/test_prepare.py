"""prepare: a real-sequence genome -> tracks that reproduce the demo genes exactly; shards, reruns, changed
inputs, dropped genes, collision-free names, stored flanks."""

import json
import threading

import numpy as np
import polars as pl
import pytest

from meta_layer_cli.artifacts import DemoSource, TracksSource, predict_tracks, read_gene_track, read_manifest
from meta_layer_cli.artifacts.tracks import GENES_DIR, gene_file_name, missing_gene_ids, read_gene_flanks
from meta_layer_cli.io.demo import load_demo_gene
from meta_layer_cli.jobs.prepare import prepare
from meta_layer_cli.runtime.errors import ChangedInputsError
from tests.conftest import GENOME_CHR1, GENOME_CHR3, shared_path


def test_prepared_genes_equal_the_demo_genes_on_both_strands(small_genome_prepared):
    manifest = read_manifest(small_genome_prepared)
    assert not manifest["dropped"] and not missing_gene_ids(small_genome_prepared, manifest)
    strands = set()
    for gene_id in GENOME_CHR1 + GENOME_CHR3:
        demo = load_demo_gene(gene_id)
        track = read_gene_track(small_genome_prepared, gene_id)
        assert "".join(track["base"].cast(str).to_list()) == demo.sequence  # reverse-complemented on '-'
        np.testing.assert_array_equal(track["label"].to_numpy(), demo.labels)
        strands.add(track["strand"][0])
    assert strands == {"+", "-"}
    source = manifest["source"]
    assert source["fasta_checksum"] and source["annotation_checksum"] and source["transcripts"] == "canonical"
    assert manifest["base_model"]["name"] == "openspliceai" and manifest["base_model"]["context"] == 40


def test_minus_strand_scores_see_the_real_flank(small_genome_prepared, small_genome, osai80):
    """The stored flank is the genome's (reverse-complemented): predicting the gene with it reproduces the track,
    and N flanks would not."""
    gene_id = "26"  # minus strand
    up, down = read_gene_flanks(small_genome_prepared, gene_id)
    assert len(up) == len(down) == osai80.context and "N" not in up + down
    track = read_gene_track(small_genome_prepared, gene_id)
    demo = load_demo_gene(gene_id)
    with_flanks = osai80.predict_sequence(demo.sequence, "+", up, down)
    np.testing.assert_allclose(track.select("neither", "acceptor", "donor").to_numpy(), with_flanks, atol=1e-6)
    assert not np.allclose(osai80.predict_sequence(demo.sequence)[:5], with_flanks[:5], atol=1e-6)


def test_another_base_model_from_the_prepared_folder_alone(small_genome_prepared, osai80, tmp_path):
    """TracksSource re-reads genes (sequence, labels, flanks) from a folder: same tracks as from the FASTA."""
    again = tmp_path / "again"
    predict_tracks(osai80, TracksSource(small_genome_prepared).select(["26", "96"]), again, progress=False)
    for gene_id in ("26", "96"):
        a = read_gene_track(small_genome_prepared, gene_id)
        b = read_gene_track(again, gene_id)
        np.testing.assert_allclose(a["donor"].to_numpy(), b["donor"].to_numpy(), atol=1e-6)
    assert read_manifest(again)["source"]["kind"] == "tracks"


def test_shards_into_one_folder_equal_one_clean_run(small_genome, tmp_path):
    fasta, gtf = small_genome
    weights = shared_path("models", "openspliceai-mane", "80nt")
    genes = GENOME_CHR3
    clean, sharded = tmp_path / "clean", tmp_path / "sharded"
    prepare(clean, "openspliceai", weights, fasta=fasta, gtf=gtf, genes=genes, device="cpu", progress=False)
    errors = []

    def shard(k):
        try:
            prepare(
                sharded,
                "openspliceai",
                weights,
                fasta=fasta,
                gtf=gtf,
                genes=genes,
                shard=f"{k}/3",
                device="cpu",
                progress=False,
            )
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=shard, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert (clean / "manifest.json").read_bytes() == (sharded / "manifest.json").read_bytes()
    names = sorted(p.name for p in (clean / GENES_DIR).iterdir())
    assert names == sorted(p.name for p in (sharded / GENES_DIR).iterdir()) and len(names) == len(genes)
    for name in names:
        assert (clean / GENES_DIR / name).read_bytes() == (sharded / GENES_DIR / name).read_bytes()


def test_a_rerun_with_other_inputs_is_refused_naming_what_changed(small_genome, small_genome_prepared, tmp_path):
    fasta, gtf = small_genome
    weights = shared_path("models", "openspliceai-mane", "80nt")
    other_gtf = tmp_path / "other.gtf"
    other_gtf.write_text(gtf.read_text().replace('tag "Ensembl_canonical"; ', ""))
    with pytest.raises(ChangedInputsError, match="annotation checksum: .* -> "):
        prepare(small_genome_prepared, "openspliceai", weights, fasta=fasta, gtf=other_gtf, progress=False)
    with pytest.raises(ChangedInputsError, match="transcripts: canonical -> longest"):
        prepare(
            small_genome_prepared, "openspliceai", weights, fasta=fasta, gtf=gtf, transcripts="longest", progress=False
        )
    with pytest.raises(ChangedInputsError, match="dtype: float32 -> bfloat16"):
        prepare(small_genome_prepared, "openspliceai", weights, fasta=fasta, gtf=gtf, dtype="bfloat16", progress=False)
    with pytest.raises(ChangedInputsError, match="base model: openspliceai -> pangolin"):
        prepare(
            small_genome_prepared, "pangolin", shared_path("models", "pangolin"), fasta=fasta, gtf=gtf, progress=False
        )
    # the folder is untouched by the refusals
    assert not missing_gene_ids(small_genome_prepared)


def test_overwrite_starts_over(small_genome, tmp_path):
    fasta, gtf = small_genome
    weights = shared_path("models", "openspliceai-mane", "80nt")
    out = tmp_path / "p"
    prepare(out, "openspliceai", weights, fasta=fasta, gtf=gtf, genes=["713"], progress=False)
    manifest = prepare(
        out,
        "openspliceai",
        weights,
        fasta=fasta,
        gtf=gtf,
        genes=["716"],
        transcripts="longest",
        overwrite=True,
        progress=False,
    )
    assert [g["gene_id"] for g in manifest["genes"]] == ["716"]
    assert [p.name for p in (out / GENES_DIR).iterdir()] == [gene_file_name("716")]


def test_dropped_genes_are_named_in_a_warning_and_the_manifest(small_genome, tmp_path, caplog):
    fasta, gtf = small_genome
    text = gtf.read_text()
    extra = [
        'chrUn\tx\texon\t1\t100\t.\t+\t.\tgene_id "ON_UNKNOWN"; transcript_id "TU";',
        'chr3\tx\texon\t100\t200\t.\t+\t.\tgene_id "PAST_END"; transcript_id "TP";',
        'chr3\tx\texon\t99999900\t99999999\t.\t+\t.\tgene_id "PAST_END"; transcript_id "TP";',
        'chr3\tx\texon\t100\t200\t.\t+\t.\tgene_id "OVERLAP"; transcript_id "TO";',
        'chr3\tx\texon\t150\t300\t.\t+\t.\tgene_id "OVERLAP"; transcript_id "TO";',
    ]
    bad = tmp_path / "bad.gtf"
    bad.write_text(text + "\n".join(extra) + "\n")
    out, weights = tmp_path / "p", shared_path("models", "openspliceai-mane", "80nt")
    with caplog.at_level("WARNING"):
        manifest = prepare(out, "openspliceai", weights, fasta=fasta, gtf=bad, genes=["713"], progress=False)
    reasons = {d["gene_id"]: d["reason"] for d in manifest["dropped"]}
    assert reasons["ON_UNKNOWN"] == "contig 'chrUn' is not in the FASTA"
    assert reasons["PAST_END"].startswith("ends at 99,999,999, past the end of chr3")
    assert reasons["OVERLAP"].startswith("transcript TO: overlapping exons")
    assert "3 gene(s) dropped from the annotation" in caplog.text and "ON_UNKNOWN" in caplog.text
    with pytest.raises(ValueError, match="PAST_END \\(dropped: ends at"):
        prepare(out, "openspliceai", weights, fasta=fasta, gtf=bad, genes=["PAST_END"], progress=False)


def test_ids_that_sanitise_alike_get_distinct_files(osai80, tmp_path):
    from meta_layer_cli.artifacts import SequenceSource
    from meta_layer_cli.io.genes import GeneSequence

    gene = load_demo_gene("4")
    genes = [GeneSequence(gid, "", "", "+", gene.sequence[:500], gene.labels[:500]) for gid in ("a/b", "a_b", "A_B")]
    predict_tracks(osai80, SequenceSource(genes), tmp_path, progress=False)
    files = {gene_file_name(g) for g in ("a/b", "a_b", "A_B")}
    assert len(files) == 3 and {p.name for p in (tmp_path / GENES_DIR).iterdir()} == files
    assert len({name.lower() for name in files}) == 3  # also on case-insensitive file systems


def test_region_and_genes_file_select_genes(small_genome, tmp_path):
    from meta_layer_cli.artifacts import FastaSource

    fasta, gtf = small_genome
    source = FastaSource(fasta, gtf, cache=False)
    on_chr3 = source.select(region="3")  # chr prefix optional
    assert sorted(e.gene_id for e in on_chr3.entries) == sorted(GENOME_CHR3)
    first = on_chr3.entries[0]
    window = source.select(region=f"chr3:{first.start + 1}-{first.start + 1}")
    assert [e.gene_id for e in window.entries] == [first.gene_id]
    listed = tmp_path / "genes.txt"
    listed.write_text("# wanted\n713\n\n716  # second\n")
    out = tmp_path / "p"
    weights = shared_path("models", "openspliceai-mane", "80nt")
    manifest = prepare(out, "openspliceai", weights, fasta=fasta, gtf=gtf, genes_file=listed, progress=False)
    assert [g["gene_id"] for g in manifest["genes"]] == ["713", "716"]
    assert len(pl.read_parquet(out / GENES_DIR / gene_file_name("713"))) > 0


def test_the_demo_source_needs_no_coordinates(osai80, tmp_path):
    manifest = predict_tracks(osai80, DemoSource(["4"]), tmp_path, progress=False)
    assert manifest["source"]["kind"] == "demo" and read_gene_flanks(tmp_path, "4") == ("", "")
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["predicted_genes"] == 1


def test_a_spliceai_annotation_table_prepares_the_same_genes_as_the_gtf(small_genome, small_genome_prepared, tmp_path):
    """The table path (SpliceAI's #NAME format, as in grch37/grch38) gives the same sequence and labels."""
    from meta_layer_cli.io.gtf import genes_from_transcripts, read_transcripts

    fasta, gtf = small_genome
    genes = [g for g in genes_from_transcripts(read_transcripts(gtf)) if g.gene_id in ("26", "96")]
    rows = ["#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END"]
    for g in genes:  # named by gene id so that the prepared files are comparable
        starts = ",".join(str(s) for s, _ in g.exons) + ","
        ends = ",".join(str(e) for _, e in g.exons) + ","
        rows.append(f"{g.gene_id}\t{g.chrom}\t{g.strand}\t{g.start}\t{g.end}\t{starts}\t{ends}")
    table = tmp_path / "genes.txt"
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "p"
    manifest = prepare(
        out, "openspliceai", shared_path("models", "openspliceai-mane", "80nt"), fasta=fasta, gtf=table, progress=False
    )
    assert sorted(g["gene_id"] for g in manifest["genes"]) == ["26", "96"]
    for gene_id in ("26", "96"):
        a, b = read_gene_track(small_genome_prepared, gene_id), read_gene_track(out, gene_id)
        assert a["base"].to_list() == b["base"].to_list()
        np.testing.assert_array_equal(a["label"].to_numpy(), b["label"].to_numpy())
        np.testing.assert_allclose(a["donor"].to_numpy(), b["donor"].to_numpy(), atol=1e-6)
