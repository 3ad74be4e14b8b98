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
from meta_layer_cli.artifacts.tracks import GENE_COLUMNS, GeneTable, gene_file_name, manifest_genes
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
    """Format 4 names its planned genes' table; formats 2 and 3 (genes listed in the JSON; 2 also holds input paths)
    read as the same genes; a format this version does not know is refused with one line; a folder moved elsewhere
    reads the same (nothing in it points at a machine path)."""
    import shutil

    from meta_layer_cli.artifacts import TracksSource
    from meta_layer_cli.runtime.errors import InputDataError

    predict_tracks(osai80, DemoSource(["4"]), tmp_path / "a", progress=False)
    path = tmp_path / "a" / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["format_version"] == 4 and "weights" not in manifest["base_model"]
    (table,) = (tmp_path / "a").glob("planned-*.parquet")
    assert manifest["genes"] == {"table": table.name, "count": 1}
    genes = read_manifest(tmp_path / "a")["genes"]
    assert [g["gene_id"] for g in genes] == ["4"] and genes[0]["file"] == f"genes/{gene_file_name('4')}"
    listed = {**manifest, "genes": list(genes)}
    for version, extra in ((3, {}), (2, {"weights": "/x"})):
        path.write_text(
            json.dumps({**listed, "format_version": version, "base_model": {**listed["base_model"], **extra}})
        )
        assert read_manifest(tmp_path / "a")["genes"] == genes
    path.write_text(json.dumps({**listed, "format_version": 3, "genes": [{"gene_id": "4", "length": "long"}]}))
    with pytest.raises(InputDataError, match="manifest.json \\(its planned genes\\): cannot read it"):
        read_manifest(tmp_path / "a")
    for version in (1, 5):
        path.write_text(json.dumps({**manifest, "format_version": version}))
        with pytest.raises(InputDataError, match=f"another version of metalayer .*{version}"):
            read_manifest(tmp_path / "a")
    path.write_text(json.dumps(manifest))
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = TracksSource(tmp_path / "b")
    assert [e.gene_id for e in moved.entries] == ["4"] and moved.info["tracks"] == "b"


def test_the_planned_genes_table_is_checked(osai80, tmp_path):
    """A missing table, another table under its name, or a count that differs: one line each, never other genes."""
    from meta_layer_cli.runtime.errors import InputDataError

    folder = tmp_path / "a"
    predict_tracks(osai80, DemoSource(["4", "5"]), folder, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    table = folder / manifest["genes"]["table"]
    (folder / "manifest.json").write_text(json.dumps({**manifest, "genes": {**manifest["genes"], "count": 3}}))
    with pytest.raises(InputDataError, match="not a table of 3 planned genes"):
        read_manifest(folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    original = table.read_bytes()
    pl.read_parquet(table).head(1).write_parquet(table)
    with pytest.raises(InputDataError, match="not the table of planned genes its manifest names"):
        read_manifest(folder)
    table.unlink()
    with pytest.raises(InputDataError, match=f"its table of planned genes, {table.name}, is missing"):
        read_manifest(folder)
    table.write_bytes(original)
    assert [g["gene_id"] for g in read_manifest(folder)["genes"]] == ["4", "5"]


def test_a_format_3_folder_is_upgraded_by_a_rerun_without_predicting_again(osai80, tmp_path):
    """A folder an earlier version prepared (genes listed in the JSON) gets its table from a rerun of the same
    prepare; no gene is predicted again, and the folder then holds the bytes a fresh run writes."""
    folder, fresh = tmp_path / "old", tmp_path / "fresh"
    predict_tracks(osai80, DemoSource(["4", "5"]), folder, progress=False)
    predict_tracks(osai80, DemoSource(["4", "5"]), fresh, progress=False)
    listed = {**json.loads((folder / "manifest.json").read_text()), "genes": list(read_manifest(folder)["genes"])}
    (folder / "manifest.json").write_text(json.dumps({**listed, "format_version": 3}))
    for table in folder.glob("planned-*.parquet"):
        table.unlink()
    rerun = predict_tracks(_Interrupting(osai80, 0), DemoSource(["4", "5"]), folder, progress=False)
    assert rerun["last_run"]["predicted_genes"] == 0
    assert (folder / "manifest.json").read_bytes() == (fresh / "manifest.json").read_bytes()
    assert sorted(p.name for p in folder.glob("planned-*")) == sorted(p.name for p in fresh.glob("planned-*"))


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
    """The planned genes held as one frame read back as the manifest's rows: every key of a planned gene (None where
    a row has none; keys outside them are not kept), same values and types, by index, slice and iteration; whole
    columns; and the same bytes for the same rows."""
    full = {"gene_name": "", "transcript_id": "", "file": ""}
    rows = [
        {"gene_id": "LOC1", "chrom": "NC_003070.9", "strand": "+", "length": 1200, "start": 10, "end": 1210},
        {"gene_id": "ENSG0000.5", "chrom": "chr1", "strand": "-", "length": 7, "start": None, "end": None},
        {"gene_id": "g3", "chrom": "", "strand": "+", "length": 0, "start": 0, "end": 0, "extra": [1, "a"]},
    ]
    rows = [full | r for r in rows]
    table = GeneTable(rows)
    kept = [{k: r[k] for k in GENE_COLUMNS} for r in rows]
    assert list(GENE_COLUMNS) == ["gene_id", "gene_name", "chrom", "strand", "length", "start", "end"] + [
        "transcript_id",
        "file",
    ]
    assert len(table) == 3 and list(table) == kept and table == kept and kept == table and table == GeneTable(kept)
    assert table[1] == kept[1] and table[-1] == kept[2] and table[0:2] == kept[:2]
    assert "extra" not in table[2] and table[1]["start"] is None and type(table[0]["length"]) is int
    assert table.column("chrom") == ["NC_003070.9", "chr1", ""] and table.column("start") == [10, None, 0]
    assert table.column("nothing") == [None] * 3
    assert table.values_for("chrom", ["g3", "x", "LOC1", "g3"]).to_list() == ["", None, "NC_003070.9", ""]
    assert table != kept[:2] and GeneTable([]) == [] and len(GeneTable([])) == 0
    assert table.select(("start", "nothing"), {"g3", "LOC1", "absent"}) == [
        {"start": 10, "nothing": None, "gene_id": "LOC1"},
        {"start": 0, "nothing": None, "gene_id": "g3"},
    ]
    with pytest.raises(IndexError):
        table[3]
    assert manifest_genes({"genes": kept}) == kept and manifest_genes({}) == []
    assert table.parquet_bytes() == GeneTable(kept).parquet_bytes() != GeneTable(kept[:2]).parquet_bytes()


def test_a_manifest_replaced_while_it_is_read_is_read_again(osai80, tmp_path, monkeypatch):
    """A reader that read manifest.json just before a writer replaced it (and removed the table it named) reads the
    new one, instead of failing on the table that is gone."""
    from meta_layer_cli.artifacts import tracks

    folder = tmp_path / "a"
    predict_tracks(osai80, DemoSource(["4", "5"]), folder, progress=False)
    read_table, calls = tracks._read_gene_table, []

    def racing(out_dir, entry):
        calls.append(entry["table"])
        if len(calls) == 1:  # the writer runs between this reader's two reads
            genes = GeneTable(read_table(out_dir, entry)[:1])
            tracks.write_manifest(folder, {**json.loads((folder / "manifest.json").read_text()), "genes": genes})
        return read_table(out_dir, entry)

    monkeypatch.setattr(tracks, "_read_gene_table", racing)
    assert [g["gene_id"] for g in read_manifest(folder)["genes"]] == ["4"]
    assert len(calls) == 2 and calls[0] != calls[1] and not (folder / calls[0]).exists()
