"""The SpliceAI score definition: sequence encoding, indel realignment of the ALT track, the
``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` entry (ported line for line from
``spliceai`` 1.3.1), its tissue-model variant (Pangolin) and the gene masking of the input window.

How ``score_vcf`` applies it: :mod:`meta_layer_cli.inference.vcf`.
"""

from __future__ import annotations

import numpy as np

from meta_layer_cli.io.annotation import VariantGene

SPLICEAI_INFO = (
    '##INFO=<ID=SpliceAI,Number=.,Type=String,Description="SpliceAIv1.3.1 variant '
    "annotation. These include delta scores (DS) and delta positions (DP) for "
    "acceptor gain (AG), acceptor loss (AL), donor gain (DG), and donor loss (DL). "
    'Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL">'
)


# --------------------------------------------------------------------------------------------
# SpliceAI's sequence encoding
# --------------------------------------------------------------------------------------------
def _spliceai_table() -> dict[int, str]:
    # spliceai.utils.one_hot_encode: upper(); A,C,G,T,N -> 1,2,3,4,0; every byte then taken % 5,
    # row 0 all-zero. Other letters land on whichever base their byte code % 5 selects.
    table = {}
    for code in range(128):
        ch = chr(code).upper()
        table[code] = ch if ch in "ACGTN" else "NACGT"[ord(ch) % 5]
    return table


_SPLICEAI_TRANSLATE = str.maketrans(_spliceai_table())


def spliceai_normalize(seq: str) -> str:
    """Rewrite ``seq`` with A/C/G/T/N only, so that metalayer's one-hot encoding equals SpliceAI's."""
    return seq.translate(_SPLICEAI_TRANSLATE)


# --------------------------------------------------------------------------------------------
# The delta-score definition
# --------------------------------------------------------------------------------------------
def _adjust_alt(y_alt: np.ndarray, ref_len: int, alt_len: int, half: int) -> np.ndarray:
    """SpliceAI's realignment of an indel's ALT track ``[2*half + 1 - ref_len + alt_len, C]`` to ``[2*half + 1, C]``."""
    if ref_len > 1 and alt_len == 1:
        del_len = ref_len - alt_len
        # float64 zeros, as in spliceai (the whole score then computes in float64)
        return np.concatenate([y_alt[: half + alt_len], np.zeros((del_len, y_alt.shape[1])), y_alt[half + alt_len :]])
    if ref_len == 1 and alt_len > 1:
        return np.concatenate(
            [y_alt[:half], np.max(y_alt[half : half + alt_len], axis=0)[None, :], y_alt[half + alt_len :]]
        )
    return y_alt


def spliceai_entry(
    allele: str,
    symbol: str,
    y_ref: np.ndarray,
    y_alt: np.ndarray,
    ref_len: int,
    dist_exon_bdry: int,
    mask: bool,
    acceptor: int = 1,
    donor: int = 2,
) -> str:
    """One ``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` entry.

    ``y_ref``: ``[cov, C]`` reference probabilities at POS-D..POS+D (genomic order);
    ``y_alt``: ``[cov - ref_len + len(allele), C]`` ALT probabilities (genomic order).
    The arithmetic (dtypes included) is spliceai's, line for line.
    """
    cov = y_ref.shape[0]
    y_alt = _adjust_alt(y_alt, ref_len, len(allele), cov // 2)
    y = np.concatenate([y_ref[None], y_alt[None]])
    idx_pa = (y[1, :, acceptor] - y[0, :, acceptor]).argmax()
    idx_na = (y[0, :, acceptor] - y[1, :, acceptor]).argmax()
    idx_pd = (y[1, :, donor] - y[0, :, donor]).argmax()
    idx_nd = (y[0, :, donor] - y[1, :, donor]).argmax()
    m = int(mask)
    mask_pa = np.logical_and((idx_pa - cov // 2 == dist_exon_bdry), m)
    mask_na = np.logical_and((idx_na - cov // 2 != dist_exon_bdry), m)
    mask_pd = np.logical_and((idx_pd - cov // 2 == dist_exon_bdry), m)
    mask_nd = np.logical_and((idx_nd - cov // 2 != dist_exon_bdry), m)
    return "{}|{}|{:.2f}|{:.2f}|{:.2f}|{:.2f}|{}|{}|{}|{}".format(  # noqa: UP032 (spliceai's own formatting)
        allele,
        symbol,
        (y[1, idx_pa, acceptor] - y[0, idx_pa, acceptor]) * (1 - mask_pa),
        (y[0, idx_na, acceptor] - y[1, idx_na, acceptor]) * (1 - mask_na),
        (y[1, idx_pd, donor] - y[0, idx_pd, donor]) * (1 - mask_pd),
        (y[0, idx_nd, donor] - y[1, idx_nd, donor]) * (1 - mask_nd),
        idx_pa - cov // 2,
        idx_na - cov // 2,
        idx_pd - cov // 2,
        idx_nd - cov // 2,
    )


def gain_loss_entry(
    allele: str,
    symbol: str,
    y_ref: np.ndarray,
    y_alt: np.ndarray,
    ref_len: int,
    annotated: np.ndarray | None,
    mask: bool,
) -> str:
    """The SpliceAI-format entry for models whose channels are tissues (Pangolin).

    Per position, gain = ``max_t(alt_t - ref_t)`` and loss = ``min_t(alt_t - ref_t)``;
    DS_AG = DS_DG = the largest gain, DS_AL = DS_DL = minus the largest loss.
    ``annotated``: ``[cov]`` bool, annotated exon boundaries (for ``mask``).
    """
    cov = y_ref.shape[0]
    y_alt = _adjust_alt(y_alt, ref_len, len(allele), cov // 2)
    delta = y_alt - y_ref
    gain, loss = delta.max(axis=1), delta.min(axis=1)
    if mask and annotated is not None:
        gain = np.where(annotated, 0.0, gain)
        loss = np.where(annotated, loss, 0.0)
    g, la = int(gain.argmax()), int(loss.argmin())
    ds_gain, ds_loss = float(gain[g]) + 0.0, 0.0 - float(loss[la])
    half = cov // 2
    return (
        f"{allele}|{symbol}|{ds_gain:.2f}|{ds_loss:.2f}|{ds_gain:.2f}|{ds_loss:.2f}|"
        f"{g - half}|{la - half}|{g - half}|{la - half}"
    )


def mask_outside_gene(seq: str, start0: int, gene: VariantGene) -> str:
    """``seq`` (genome from 0-based ``start0``) with every base outside the gene's span set to N."""
    lo = min(max(gene.tx_start - 1 - start0, 0), len(seq))
    hi = max(min(gene.tx_end - start0, len(seq)), lo)
    return "N" * lo + seq[lo:hi] + "N" * (len(seq) - hi)
