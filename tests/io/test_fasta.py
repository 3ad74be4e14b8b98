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
