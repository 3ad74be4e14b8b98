import numpy as np
import pytest
import torch

from meta_layer_cli import load_base_model
from meta_layer_cli.io.demo import load_demo_gene
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.io.sequence import reverse_complement


@pytest.fixture(scope="module")
def gene():
    return load_demo_gene("1")  # PRUNE, 27 kb


def test_minus_strand_is_reverse_complemented_and_flipped_back(osai80, gene):
    seq = gene.sequence[:4000]
    minus = osai80.predict_sequence(reverse_complement(seq), strand="-")
    plus = osai80.predict_sequence(seq)
    np.testing.assert_allclose(minus[::-1], plus, atol=1e-6)


def test_flanks_follow_the_strand(osai80, gene):
    seq, up, down = gene.sequence[100:600], gene.sequence[:100], gene.sequence[600:700]
    plus = osai80.predict_sequence(seq, "+", up, down)
    minus = osai80.predict_sequence(reverse_complement(seq), "-", reverse_complement(down), reverse_complement(up))
    np.testing.assert_allclose(minus[::-1], plus, atol=1e-6)
    whole = osai80.predict_sequence(gene.sequence[:700])
    np.testing.assert_allclose(plus, whole[100:600], atol=1e-6)


def test_lowercase_and_n_input(osai80, gene):
    seq = gene.sequence[:3000]
    np.testing.assert_array_equal(osai80.predict_sequence(seq.lower()), osai80.predict_sequence(seq))
    masked = seq[:1000] + "N" * 200 + seq[1200:]
    out = osai80.predict_sequence(masked)
    assert out.shape == (3000, 3) and np.isfinite(out).all()
    # outputs beyond the receptive field of the N run are untouched
    np.testing.assert_allclose(out[:900], osai80.predict_sequence(seq)[:900], atol=1e-6)


@pytest.mark.parametrize(
    "text, where",
    [
        (">chr1 pasted header\nACGT", "'>' at position 0"),
        ("ACGT ACGT", "' ' at position 4"),
        ("ACGTRYACGT", "'R' at position 4"),
    ],
)
def test_characters_other_than_acgtn_are_refused_naming_the_first(osai80, text, where):
    """A pasted FASTA header (or a space, or an ambiguity code) was read as N without a word."""
    from meta_layer_cli.runtime.errors import InputDataError

    with pytest.raises(InputDataError, match=f"sequence: invalid character {where}") as err:
        osai80.predict_sequence(text)
    assert "\n" not in str(err.value)
    with pytest.raises(InputDataError, match="upstream: invalid character '1' at position 0"):
        osai80.predict_sequence("ACGT", upstream="1ACG")


def test_genes_from_a_genome_may_hold_ambiguity_codes(osai80, gene):
    """Genome sequence (a prepared gene) keeps reading IUPAC codes as N: only typed-in sequence is checked."""
    seq = gene.sequence[:500]
    ambiguous = GeneSequence("x", "x", "1", "+", seq[:200] + "R" + seq[201:], np.zeros(500, np.int8))
    np.testing.assert_array_equal(osai80.predict_gene(ambiguous), osai80.predict_sequence(seq[:200] + "N" + seq[201:]))


def test_blocking_does_not_change_outputs(gene):
    from tests.conftest import shared_path

    weights = shared_path("models", "openspliceai-mane", "80nt")
    one_block = load_base_model("openspliceai", weights, block_size=100_000)
    small = load_base_model("openspliceai", weights, block_size=777, batch_size=3)
    np.testing.assert_allclose(
        small.predict_sequence(gene.sequence), one_block.predict_sequence(gene.sequence), atol=1e-6
    )


def test_packing_genes_equals_one_at_a_time(osai80):
    genes = [load_demo_gene(g) for g in ("1", "4", "5")]
    genes[1] = GeneSequence(
        "x", "", "", "+", genes[1].sequence[:2000], genes[1].labels[:2000], upstream="ACGT" * 30, downstream=""
    )
    packed = osai80.predict_genes(genes)
    for g, p in zip(genes, packed):
        np.testing.assert_allclose(p, osai80.predict_gene(g), atol=1e-6)


def test_spliceai_scores_real_sites_of_a_whole_gene(spliceai, gene):
    scores = spliceai.predict_gene(gene)
    assert scores.shape == (len(gene.sequence), 3)
    for cls in (1, 2):
        sites = np.flatnonzero(gene.labels == cls)
        assert np.median(scores[sites, cls]) > 0.9
        assert np.median(scores[sites - 1, cls]) < 0.01  # aligned to the labelled nucleotide


def test_openspliceai_positions_line_up_with_spliceai_labels(gene):
    """Finding documented in README: OpenSpliceAI's scores need no shift."""
    from tests.conftest import shared_path

    model = load_base_model("openspliceai", shared_path("models", "openspliceai-mane", "10000nt"))
    scores = model.predict_gene(gene)
    for cls in (1, 2):
        sites = np.flatnonzero(gene.labels == cls)
        by_shift = {s: scores[sites + s, cls].mean() for s in (-1, 0, 1)}
        assert max(by_shift, key=by_shift.get) == 0


@pytest.mark.parametrize(
    "name, weights, message",
    [
        ("openspliceai", "/no/such/dir", "openspliceai weights not found: --weights /no/such/dir does not exist"),
        ("pangolin", None, "pangolin weights not found: looked at --weights"),
        ("spliceai", "/no/model.h5", "spliceai weights not found"),
        ("nonsense", None, "unknown base model 'nonsense'"),
    ],
)
def test_bad_weights_are_one_line_errors(name, weights, message, monkeypatch):
    monkeypatch.delenv("METALAYER_MODELS", raising=False)
    with pytest.raises((FileNotFoundError, ValueError), match=message):
        load_base_model(name, weights)


def test_wrong_file_type_for_weights(tmp_path):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load weights"):
        load_base_model("openspliceai", bogus)


def test_cuda_request_without_gpu_is_clear():

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        load_base_model("spliceai", device="cuda")


def test_base_model_convolutions_run_without_tf32_and_restore_the_setting():
    # TF32 convolutions (PyTorch's GPU default) move SpliceAI scores by ~1e-3: enough to
    # change a two-decimal DS; the setting must be off inside and untouched outside.
    from meta_layer_cli.runtime.device import full_precision_convolutions

    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        with full_precision_convolutions():
            assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = before
