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
    with pytest.raises(KeyError, match="contig 'chr7' not found in FASTA ref.fa"):
        Fasta(fasta_path).fetch("chr7", 0, 5)


def test_bgzip_fasta(tmp_path, fasta_path):
    gz = tmp_path / "ref.fa.gz"
    pysam.tabix_compress(str(fasta_path), str(gz))
    assert Fasta(gz).fetch("chr1", 2, 8) == "GTNNAC"


def test_plain_gzip_gives_a_hint(tmp_path, fasta_path):
    gz = tmp_path / "plain.fa.gz"
    gz.write_bytes(gzip.compress(fasta_path.read_bytes()))
    with pytest.raises(ValueError, match="bgzip"):
        Fasta(gz)


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
    checksum, names = scan_fasta(path, chunk_size=chunk_size)
    assert names == ["chr1", "chr2", "chrM"]
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
