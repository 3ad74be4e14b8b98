import pytest

from meta_layer_cli.io.contigs import ContigResolver, strip_chr


def test_strip_chr():
    assert strip_chr("chr1") == "1"
    assert strip_chr("chrM") == "MT"
    assert strip_chr("X") == "X"


def test_resolver_prefers_exact_names():
    r = ContigResolver(["1", "chr1_alt", "chrX"])
    assert r.resolve("chr1") == "1"
    assert r.resolve("X") == "chrX"
    assert r.resolve("chr2") is None


def test_no_overlap_fails_loudly():
    r = ContigResolver(["NC_000001.11"])
    with pytest.raises(ValueError, match="none of the 2 contigs"):
        r.check_overlap(["chr1", "chr2"], "annotation")
