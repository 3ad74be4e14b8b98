import gzip

import pysam
import pytest

from meta_layer_cli.io.fasta import Fasta


@pytest.fixture()
def fasta_path(tmp_path):
    path = tmp_path / "ref.fa"
    path.write_text(">chr1 test\nACGTNNacgt\nACGTAC\n>chr2\nTTTTGGGG\n")
    return path


def test_fetch_is_uppercase_zero_based_half_open(fasta_path):
    fa = Fasta(fasta_path)
    assert fa.fetch("chr1", 0, 4) == "ACGT"
    assert fa.fetch("chr1", 6, 10) == "ACGT"
    assert fa.length("chr1") == 16


def test_fetch_pads_with_n_beyond_contig_ends(fasta_path):
    fa = Fasta(fasta_path)
    assert fa.fetch("chr2", -3, 2) == "NNNTT"
    assert fa.fetch("chr2", 6, 11) == "GGNNN"


def test_chr_prefix_is_matched_both_ways(fasta_path):
    fa = Fasta(fasta_path)
    assert fa.fetch("1", 0, 2) == "AC"
    assert "2" in fa and "chr2" in fa and "3" not in fa


def test_unknown_contig_is_a_clear_error(fasta_path):
    with pytest.raises(ValueError, match="contig 'chr7' not found in FASTA ref.fa"):
        Fasta(fasta_path).fetch("chr7", 0, 5)


def test_bgzip_fasta(tmp_path, fasta_path):
    gz = tmp_path / "ref.fa.gz"
    pysam.tabix_compress(str(fasta_path), str(gz))
    assert Fasta(gz).fetch("chr1", 2, 8) == "GTNNAC"


def test_plain_gzip_gives_one_line_with_a_hint(tmp_path, fasta_path, capfd):
    gz = tmp_path / "plain.fa.gz"
    gz.write_bytes(gzip.compress(fasta_path.read_bytes()))
    with pytest.raises(ValueError, match="plain gzip, and random access needs bgzip.*`bgzip -d` then `bgzip`"):
        Fasta(gz)
    assert "[E::" not in capfd.readouterr().err  # htslib's own lines are not printed before ours


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="FASTA not found"):
        Fasta(tmp_path / "nope.fa")


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1 << 22])
@pytest.mark.parametrize("compress", ["plain", "gzip", "bgzip"])
def test_scan_fasta_names_and_checksum_whatever_the_chunking(tmp_path, chunk_size, compress):
    from meta_layer_cli.io.fasta import scan_fasta
    from meta_layer_cli.runtime.fingerprint import file_checksum

    text = ">chr1 first contig\nACGTN\nacgt\n>chr2\n" + "G" * 200 + "\n>chrM\nA"  # no final newline
    path = tmp_path / "g.fa"
    path.write_text(text)
    if compress == "gzip":
        path = tmp_path / "g.fa.gz"
        path.write_bytes(gzip.compress(text.encode()))
    elif compress == "bgzip":
        pysam.tabix_compress(str(tmp_path / "g.fa"), str(tmp_path / "g.fa.bgz"))
        path = tmp_path / "g.fa.bgz"
    checksum, names, descriptions = scan_fasta(path, chunk_size=chunk_size)
    assert names == ["chr1", "chr2", "chrM"] and descriptions == ["first contig", "", ""]
    assert checksum == file_checksum(path)


def test_duplicate_contig_names_are_refused(tmp_path):
    from meta_layer_cli.io.fasta import scan_fasta
    from meta_layer_cli.runtime.errors import InputDataError

    dup = tmp_path / "dup.fa"
    dup.write_text(">a\nACGT\n>b\nGG\n>a\nTTTTTTTT\n")
    with pytest.raises(InputDataError, match="two records named 'a'"):
        scan_fasta(dup)
    both = tmp_path / "both.fa"
    both.write_text(">chr1\nACGT\n>1\nGGGG\n")
    with pytest.raises(InputDataError, match="names both 'chr1' and '1'"):
        Fasta(both)


def test_the_index_appears_whole_or_not_at_all(fasta_path, monkeypatch):
    """htslib writes a missing .fai in place while it opens a FASTA; a second job opening the FASTA then read
    a partial index (a genome without contigs: seen in CI with two prepare jobs started together). The index
    is written under a temporary name and renamed, so PATH.fai never exists half-written."""
    import meta_layer_cli.io.fasta as module

    fai = fasta_path.parent / "ref.fa.fai"
    real = pysam.faidx
    seen = []

    def faidx(*args):
        seen.append(fai.exists())  # while the index is being built, PATH.fai is not there yet
        return real(*args)

    monkeypatch.setattr(pysam, "faidx", faidx)
    module.ensure_fasta_index(fasta_path)
    assert seen == [False] and fai.is_file()
    assert sorted(p.name for p in fasta_path.parent.iterdir()) == ["ref.fa", "ref.fa.fai"]  # no temporary left
    module.ensure_fasta_index(fasta_path)
    assert seen == [False]  # a current index is not rebuilt


def _count_contigs(path, start, results):
    import time

    while time.time() < start:  # all jobs open the FASTA at the same moment
        pass
    try:
        results.put(len(Fasta(path).lengths))
    except Exception as err:  # noqa: BLE001 - reported to the test
        results.put(repr(err))


def test_many_jobs_opening_one_unindexed_fasta_all_see_every_contig(tmp_path):
    """Four processes open a fresh 5-MB FASTA at once, ten times. Before the index was written atomically,
    6 of 10 such rounds had a job see 0 contigs or fail to open the file."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("fork")
    for round_ in range(10):
        path = tmp_path / f"g{round_}.fa"
        path.write_text("".join(f">chr{i}\n" + ("ACGT" * 15 + "\n") * 200 for i in range(1, 400)))
        results, start = context.Queue(), time.time() + 0.3
        jobs = [context.Process(target=_count_contigs, args=(path, start, results)) for _ in range(4)]
        for job in jobs:
            job.start()
        counts = [results.get(timeout=60) for _ in jobs]
        for job in jobs:
            job.join()
        assert counts == [399] * 4, (round_, counts)


def test_an_index_older_than_the_fasta_is_rebuilt(fasta_path):
    import os

    Fasta(fasta_path).close()
    fasta_path.write_text(">chrX\nGGGGCCCC\n")  # the file changed; its old .fai describes chr1 and chr2
    stamp = os.stat(fasta_path.parent / "ref.fa.fai").st_mtime
    os.utime(fasta_path, (stamp + 10, stamp + 10))
    fa = Fasta(fasta_path)
    assert fa.lengths == {"chrX": 8} and fa.fetch("chrX", 0, 8) == "GGGGCCCC"
