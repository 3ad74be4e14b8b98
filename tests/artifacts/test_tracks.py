"""Tracks from the demo set and from a FASTA + GTF built out of a real minus-strand gene."""

import json

import numpy as np
import polars as pl
import pytest

from meta_layer_cli.artifacts import (
    DemoSource,
    FastaSource,
    predict_tracks,
    read_gene_track,
    read_manifest,
)
from meta_layer_cli.artifacts.tracks import GeneTable, gene_file_name, manifest_genes
from meta_layer_cli.io.demo import exons_from_labels, load_demo_gene
from meta_layer_cli.io.sequence import reverse_complement

FLANK = 300  # genomic DNA either side of the gene in the toy genome


@pytest.fixture(scope="module")
def minus_genome(tmp_path_factory):
    """chr9 = random flank + reverse complement of LIN9's first 12 kb + random flank, with a GTF
    whose exons come from the demo labels: a real minus-strand gene on a real-looking genome."""
    d = tmp_path_factory.mktemp("genome")
    gene = load_demo_gene("3")
    n = 12_000
    seq, labels = gene.sequence[:n], gene.labels[:n]
    rng = np.random.default_rng(0)
    left, right = ("".join(rng.choice(list("ACGT"), FLANK)) for _ in range(2))
    genomic = left + reverse_complement(seq) + right
    (d / "ref.fa").write_text(">chr9\n" + "\n".join(genomic[i : i + 60] for i in range(0, len(genomic), 60)) + "\n")
    lines = []
    for start, end in exons_from_labels(labels):  # transcript coords -> genomic (1-based, inclusive)
        g_start, g_end = FLANK + n - end + 1, FLANK + n - start
        lines.append(f'9\tt\texon\t{g_start}\t{g_end}\t.\t-\t.\tgene_id "G3"; transcript_id "T3"; gene_name "LIN9";')
    (d / "genes.gtf").write_text("\n".join(lines) + "\n")
    return d, gene, seq, labels, genomic


def test_minus_strand_gene_from_fasta_gtf(minus_genome, osai80, tmp_path):
    d, _, seq, labels, genomic = minus_genome
    manifest = predict_tracks(osai80, FastaSource(d / "ref.fa", d / "genes.gtf", cache=False), tmp_path, progress=False)
    assert [g["gene_name"] for g in manifest["genes"]] == ["LIN9"]
    # no machine path: the inputs by file name and checksum, the weights by checksum
    text = (tmp_path / "manifest.json").read_text()
    assert str(d) not in text and str(tmp_path) not in text and 'weights"' not in text
    assert (manifest["source"]["fasta"], manifest["source"]["annotation"]) == ("ref.fa", "genes.gtf")
    track = read_gene_track(tmp_path, "G3")
    # rows run 5' -> 3' of the transcript: sequence and labels equal the demo gene's
    assert "".join(track["base"].to_list()) == seq
    np.testing.assert_array_equal(track["label"].to_numpy(), labels)
    # positions are 1-based genomic, descending on the minus strand
    assert track["position"][0] == FLANK + len(seq) and track["position"][-1] == FLANK + 1
    assert set(track["chrom"].to_list()) == {"9"} and set(track["strand"].to_list()) == {"-"}
    # same scores as the reverse-complemented genomic sequence with its real flanks
    expected = osai80.predict_sequence(
        genomic[FLANK : FLANK + len(seq)], strand="-", upstream=genomic[:FLANK], downstream=genomic[FLANK + len(seq) :]
    )[::-1]
    np.testing.assert_allclose(track.select("neither", "acceptor", "donor").to_numpy(), expected, atol=1e-6)
    # and the same as predicting the transcript-orientation sequence directly
    direct = osai80.predict_sequence(
        seq, "+", reverse_complement(genomic[FLANK + len(seq) :]), reverse_complement(genomic[:FLANK])
    )
    np.testing.assert_allclose(track["acceptor"].to_numpy(), direct[:, 1], atol=1e-6)


def test_unknown_contig_is_a_clear_error(minus_genome, tmp_path):
    d = minus_genome[0]
    gtf = tmp_path / "other.gtf"
    gtf.write_text((d / "genes.gtf").read_text().replace("9\tt\t", "chr5\tt\t"))
    with pytest.raises(ValueError, match="none of the 1 contigs in annotation"):
        FastaSource(d / "ref.fa", gtf, cache=False)


def test_demo_tracks_schema_and_manifest(osai80, tmp_path):
    manifest = predict_tracks(osai80, DemoSource(["4", "5"]), tmp_path, genome_build="hg19", progress=False)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["base_model"]["name"] == "openspliceai"
    assert on_disk["base_model"]["weights_checksum"] == osai80.weights_checksum
    assert on_disk["source"]["genome_build"] == "hg19" and on_disk["metalayer_version"]
    assert [g["gene_id"] for g in manifest["genes"]] == ["4", "5"]
    track = read_gene_track(tmp_path, "4")
    assert track.columns == ["offset", "chrom", "position", "strand", "base", "label", "neither", "acceptor", "donor"]
    assert track.schema["acceptor"] == pl.Float32 and track["position"].null_count() == len(track)
    np.testing.assert_allclose(
        track.select("neither", "acceptor", "donor").to_numpy(), osai80.predict_gene(load_demo_gene("4")), atol=1e-6
    )


def test_manifest_versions(osai80, tmp_path):
    """Format 2 (the same, plus the input paths) is read; a format this version does not know is refused with one
    line; a folder moved elsewhere reads the same (nothing in it points at a machine path)."""
    import shutil

    from meta_layer_cli.artifacts import TracksSource
    from meta_layer_cli.runtime.errors import InputDataError

    predict_tracks(osai80, DemoSource(["4"]), tmp_path / "a", progress=False)
    path = tmp_path / "a" / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["format_version"] == 3 and "weights" not in manifest["base_model"]
    path.write_text(
        json.dumps({**manifest, "format_version": 2, "base_model": {**manifest["base_model"], "weights": "/x"}})
    )
    assert read_manifest(tmp_path / "a")["genes"] == manifest["genes"]
    for version in (1, 4):
        path.write_text(json.dumps({**manifest, "format_version": version}))
        with pytest.raises(InputDataError, match=f"another version of metalayer .*{version}"):
            read_manifest(tmp_path / "a")
    path.write_text(json.dumps(manifest))
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = TracksSource(tmp_path / "b")
    assert [e.gene_id for e in moved.entries] == ["4"] and moved.info["tracks"] == "b"


class _Interrupting:
    """Wraps a model and dies after ``n`` genes, like a killed job."""

    def __init__(self, model, n):
        self.model, self.n = model, n

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict_genes(self, genes):
        if self.n <= 0:
            raise KeyboardInterrupt
        self.n -= len(genes)
        return self.model.predict_genes(genes)


def test_resume_after_interruption(osai80, tmp_path):
    genes = DemoSource(["4", "5", "6"])
    with pytest.raises(KeyboardInterrupt):
        predict_tracks(_Interrupting(osai80, 1), genes, tmp_path, progress=False, pack_nt=1)
    finished = sorted(p.name for p in (tmp_path / "genes").iterdir())
    assert finished == [gene_file_name("4")]  # whole files only, no temporaries left behind
    first_mtime = (tmp_path / "genes" / gene_file_name("4")).stat().st_mtime_ns
    manifest = predict_tracks(osai80, genes, tmp_path, progress=False)
    assert manifest["last_run"]["predicted_genes"] == 2
    assert (tmp_path / "genes" / gene_file_name("4")).stat().st_mtime_ns == first_mtime
    assert len(read_manifest(tmp_path)["genes"]) == 3


def test_other_model_into_same_directory_is_refused(osai80, spliceai, tmp_path):
    predict_tracks(osai80, DemoSource(["4"]), tmp_path, progress=False)
    with pytest.raises(ValueError, match="made from other inputs .*base model: openspliceai -> spliceai"):
        predict_tracks(spliceai, DemoSource(["4"]), tmp_path, progress=False)


def test_precomputed_scores_plug_in(minus_genome, osai80, tmp_path):
    from meta_layer_cli import load_base_model

    d = minus_genome[0]
    first = tmp_path / "first"
    predict_tracks(osai80, FastaSource(d / "ref.fa", d / "genes.gtf", cache=False), first, progress=False)
    table = read_gene_track(first, "G3").select(
        pl.lit("chr9").alias("chrom"),
        pl.col("position").alias("pos"),
        pl.col("strand").cast(pl.Utf8),
        "neither",
        "acceptor",
        "donor",
    )
    table_path = tmp_path / "scores.tsv"
    table.head(len(table) - 10).write_csv(table_path, separator="\t")  # 10 positions missing
    model = load_base_model("precomputed", path=table_path)
    assert model.channels == ("neither", "acceptor", "donor")
    with pytest.warns(UserWarning, match="10 of 12000 positions"):
        source = FastaSource(d / "ref.fa", d / "genes.gtf", cache=False)
        predict_tracks(model, source, tmp_path / "second", progress=False)
    again = read_gene_track(tmp_path / "second", "G3")
    original = read_gene_track(first, "G3")
    np.testing.assert_allclose(again["donor"].to_numpy()[:-10], original["donor"].to_numpy()[:-10], atol=1e-6)
    assert again["donor"].is_nan().sum() == 10


def test_gene_table_gives_back_the_manifest_rows():
    """The manifest's genes held by column read back as the JSON dicts they were: same keys (a key a row lacks
    stays absent, null stays None), same values and types, by index, slice and iteration; and whole columns."""
    rows = [
        {"gene_id": "LOC1", "chrom": "NC_003070.9", "strand": "+", "length": 1200, "start": 10, "end": 1210},
        {"gene_id": "ENSG0000.5", "chrom": "chr1", "strand": "-", "length": 7, "start": None, "end": None},
        {"gene_id": "g3", "chrom": "", "strand": "+", "length": 0, "start": 0, "end": 0, "extra": [1, "a"]},
    ]
    table = GeneTable(rows)
    assert len(table) == 3 and list(table) == rows and table == rows and rows == table
    assert table[1] == rows[1] and table[-1] == rows[2] and table[0:2] == rows[:2]
    assert "extra" not in table[0] and table[1]["start"] is None and type(table[0]["length"]) is int
    assert table.column("chrom") == ["NC_003070.9", "chr1", ""] and table.column("start") == [10, None, 0]
    assert table.column("extra") == [None, None, [1, "a"]] and table.column("nothing") == [None] * 3
    assert table != rows[:2] and GeneTable([]) == []
    assert table.select(("start", "extra"), {"g3", "LOC1", "absent"}) == [
        {"start": 10, "extra": None, "gene_id": "LOC1"},
        {"start": 0, "extra": [1, "a"], "gene_id": "g3"},
    ]
    with pytest.raises(IndexError):
        table[3]
    assert manifest_genes({"genes": rows}) == rows and manifest_genes({}) == []
