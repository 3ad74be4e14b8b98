"""The one interface every base model sits behind."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from meta_layer_cli.base_models.network import DilatedResidualNetwork, NetworkParams
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.io.sequence import codes_to_one_hot, reverse_complement, sequence_to_codes, validate_sequence
from meta_layer_cli.runtime.device import default_sizes, full_precision_convolutions, resolve_device, resolve_dtype
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.runtime.fingerprint import file_checksum

# SpliceAI-10k dilation schedule; shallower models (OpenSpliceAI 80/400/2000 nt) use its prefix.
DILATION_SCHEDULE = (1,) * 4 + (4,) * 4 + (10,) * 4 + (25,) * 4
_N_CODE = 4


def padded_codes(context: int, seq: str, upstream: str = "", downstream: str = "") -> np.ndarray:
    """The network input for ``seq``: ``context`` nt each side, real flank where given, N past it
    (integer codes ``[len(seq) + 2*context]``)."""
    up = upstream[-context:] if context else ""
    down = downstream[:context]
    return sequence_to_codes("N" * (context - len(up)) + up + seq + down + "N" * (context - len(down)))


@dataclass
class EnsembleMember:
    """One network of an ensemble: its head channels ``take`` are averaged into output ``slots``."""

    params: NetworkParams
    take: tuple[int, ...]
    slots: tuple[int, ...]


class BaseModel:
    """A splice-site model: sequence in, per-nucleotide probabilities out.

    Attributes
    ----------
    name : str
        Registry name (``spliceai``, ``openspliceai``, ``pangolin``, ``precomputed``).
    context : int
        Flank in nt each output position needs on each side.
    channels : tuple[str, ...]
        Output channel names, in order.
    weights_checksum : str
        Identifies the weights; part of every cache key and manifest.
    weights_hint : str or None
        The weights path as given (None: the packaged default), recorded to find them again.
    """

    name: str
    context: int
    channels: tuple[str, ...]
    weights_checksum: str
    weights_paths: tuple[str, ...] = ()
    weights_hint: str | None = None

    def predict_gene(self, gene: GeneSequence) -> np.ndarray:
        """Scores ``[len(gene.sequence), C]`` in the gene's transcript orientation."""
        raise NotImplementedError

    def predict_genes(self, genes: Sequence[GeneSequence]) -> list[np.ndarray]:
        return [self.predict_gene(g) for g in genes]


class NeuralBaseModel(BaseModel):
    """An ensemble of :class:`DilatedResidualNetwork` members, run in long blocks.

    Parameters
    ----------
    block_size : int
        Output nt per forward pass. Long blocks pay the ``2 * context`` flank once
        per block instead of once per 5 kb as the official tools do.
    batch_size : int
        Full-length blocks per forward pass.
    """

    def __init__(
        self,
        name: str,
        members: Sequence[EnsembleMember],
        channels: Sequence[str],
        weights_paths: Sequence[str | os.PathLike],
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        block_size: int | None = None,
        batch_size: int | None = None,
        weights_hint: str | None = None,
    ):
        self.name = name
        self.channels = tuple(channels)
        self.weights_paths = tuple(str(p) for p in weights_paths)
        self.weights_checksum = file_checksum(self.weights_paths)
        self.weights_hint = weights_hint
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        contexts = {m.params.context for m in members}
        if len(contexts) != 1:
            raise InputDataError(f"ensemble members disagree on context: {sorted(contexts)}")
        self.context = contexts.pop()
        self.networks = [DilatedResidualNetwork(m.params).to(self.device, self.dtype).eval() for m in members]
        self._routing = [(list(m.take), list(m.slots)) for m in members]
        counts = np.zeros(len(self.channels))
        for m in members:
            counts[list(m.slots)] += 1
        if (counts == 0).any():
            raise InputDataError(f"{name}: no ensemble member fills channel(s) {np.flatnonzero(counts == 0)}")
        self._counts = torch.tensor(counts, dtype=torch.float32, device=self.device)[None, :, None]
        sizes = default_sizes(self.device)
        self.block_size = block_size or sizes["base_block"]
        self.batch_size = batch_size or sizes["base_batch"]

    # -- tensors -----------------------------------------------------------------------------
    def ensemble_members(self) -> list[tuple[nn.Module, list[int], list[int]]]:
        """``(network, take, slots)`` per member: ``network(x)[:, take]`` adds to channels ``slots``
        of the ensemble sum (for code that runs the networks itself, e.g. incremental ALT scoring)."""
        return [(net, take, slots) for net, (take, slots) in zip(self.networks, self._routing)]

    @property
    def member_counts(self) -> np.ndarray:
        """``[C]`` members contributing to each channel (the ensemble sum's divisor)."""
        return self._counts[0, :, 0].cpu().numpy()

    @torch.inference_mode()
    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """One-hot ``[B, 4, L + 2*context]`` -> ensemble-mean probabilities ``[B, C, L]`` (numpy)."""
        x = torch.as_tensor(x).to(self.device, self.dtype)
        if x.ndim != 3 or x.shape[1] != 4:
            raise ValueError(f"expected one-hot input [B, 4, L + {2 * self.context}], got {tuple(x.shape)}")
        out = torch.zeros(x.shape[0], len(self.channels), x.shape[-1] - 2 * self.context, device=self.device)
        with full_precision_convolutions():
            for net, take, slots in self.ensemble_members():
                out[:, slots] += net(x)[:, take]
        return (out / self._counts).cpu().numpy()

    # -- sequences ---------------------------------------------------------------------------
    def predict_codes(self, codes: np.ndarray, on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Integer codes ``[L + 2*context]`` (0-3 ACGT, 4 N) -> ``[L, C]`` in bounded memory.

        ``on_progress(n)``: called after each forward pass with the ``n`` output positions it computed."""
        codes = np.asarray(codes, dtype=np.uint8)
        out_len = len(codes) - 2 * self.context
        if out_len <= 0:
            return np.zeros((0, len(self.channels)), dtype=np.float32)
        span = self.block_size + 2 * self.context
        starts = list(range(0, out_len, self.block_size))
        result = np.empty((out_len, len(self.channels)), dtype=np.float32)
        full = [s for s in starts if s + self.block_size <= out_len]
        for i in range(0, len(full), self.batch_size):
            batch = full[i : i + self.batch_size]
            x = codes_to_one_hot(np.stack([codes[s : s + span] for s in batch]))
            probs = self.predict(x)
            for s, p in zip(batch, probs):
                result[s : s + self.block_size] = p.T
            if on_progress is not None:
                on_progress(len(batch) * self.block_size)
        if len(full) < len(starts):
            s = starts[-1]
            probs = self.predict(codes_to_one_hot(codes[s:])[None])
            result[s:] = probs[0].T
            if on_progress is not None:
                on_progress(out_len - s)
        return result

    def predict_sequence(self, seq: str, strand: str = "+", upstream: str = "", downstream: str = "") -> np.ndarray:
        """Any-length DNA (A, C, G, T, N; any case) -> ``[len(seq), C]`` in ``seq``'s coordinates.

        ``upstream``/``downstream`` are real flanking sequence in the same
        orientation as ``seq`` (the ends are N-padded to ``context``). With
        ``strand="-"`` the model reads the reverse complement, as a minus-strand
        transcript, and the output is flipped back so row ``i`` still scores
        ``seq[i]``. Any other character (a pasted FASTA header, a digit, a space) is refused with one
        line naming the first one, rather than read as N.
        """
        for text, what in ((seq, "sequence"), (upstream, "upstream"), (downstream, "downstream")):
            validate_sequence(text, what, iupac=False)
        return self._predict_text(seq, strand, upstream, downstream)

    def _predict_text(self, seq: str, strand: str, upstream: str, downstream: str) -> np.ndarray:
        """:meth:`predict_sequence` without the check: genome sequence may hold IUPAC codes, read as N."""
        if strand not in ("+", "-"):
            raise InputDataError(f"strand must be '+' or '-', got {strand!r}")
        if strand == "-":
            seq, upstream, downstream = (
                reverse_complement(seq),
                reverse_complement(downstream),
                reverse_complement(upstream),
            )
        scores = self.predict_codes(padded_codes(self.context, seq, upstream, downstream))
        return scores[::-1].copy() if strand == "-" else scores

    def predict_gene(self, gene: GeneSequence) -> np.ndarray:
        return self._predict_text(gene.sequence, "+", gene.upstream, gene.downstream)

    def predict_genes(
        self,
        genes: Sequence[GeneSequence],
        share_windows: bool = True,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        """Like :meth:`predict_gene` for each gene, packing them into shared blocks (:func:`pack_genes`).

        Genes on one strand whose context windows overlap are scored in one pass over their union
        (``share_windows``), so no position is computed twice; every output still sees exactly its own
        ``context`` each side, so the result is the same as one gene at a time (to float rounding).
        ``on_progress(n)``: called as output positions are computed (``n`` more each time).
        """
        return self.predict_pack(pack_genes(genes, self.context, share_windows), on_progress)

    def predict_pack(self, pack: GenePack, on_progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
        """Scores ``[L, C]`` of each gene of a :class:`GenePack` (one pass over its codes)."""
        if not pack.genes:
            return []
        scores = self.predict_codes(pack.codes, on_progress)
        return [scores[o : o + len(g.sequence)].copy() for o, g in zip(pack.offsets, pack.genes)]


@dataclass
class GenePack:
    """Genes laid out for one forward pass: the network input ``codes`` and, per gene (in input order),
    the index of its first nucleotide in the output (``codes`` minus ``context`` each end)."""

    genes: Sequence[GeneSequence]
    codes: np.ndarray
    offsets: list[int]
    context: int

    @property
    def computed_nt(self) -> int:
        """Output positions the pass computes (flanks between segments included)."""
        return max(len(self.codes) - 2 * self.context, 0)


def _oriented_start(g: GeneSequence) -> int | None:
    """The gene's first nucleotide as a coordinate that grows 5' -> 3' on its strand (None: no usable
    coordinates). Plus strand: the genomic position; minus strand: minus it."""
    n = len(g.sequence)
    if g.positions is None or n == 0 or g.strand not in ("+", "-"):
        return None
    first, last = int(g.positions[0]), int(g.positions[-1])
    step = 1 if g.strand == "+" else -1
    if last - first != step * (n - 1):
        return None  # not one contiguous stretch of the genome
    return first * step


def pack_genes(genes: Sequence[GeneSequence], context: int, share_windows: bool = True) -> GenePack:
    """Lay genes end to end for one pass, each with ``context`` nt of flank (real where given, N past it).

    Genes on the same contig and strand whose windows (gene +- ``context``) overlap are merged into one
    segment over the union of their windows, provided the windows agree where they overlap (they do
    when cut from one genome; a stored flank shorter than ``context`` does not, and such a gene keeps
    its own window). Segments follow each other in the order of their first gene; where the flanks of
    neighbouring segments are all N a single N spacer of ``context`` serves both.
    """
    c = context
    windows = [padded_codes(c, g.sequence, g.upstream, g.downstream) for g in genes]
    # segments: (first gene index, codes, [(gene index, nt of the gene's first base from the segment start)])
    segments: list[tuple[int, np.ndarray, list[tuple[int, int]]]] = []
    placed = [False] * len(genes)
    if share_windows:
        located = [(g.chrom, g.strand, o, i) for i, g in enumerate(genes) if (o := _oriented_start(g)) is not None]
        located.sort()
        group: list | None = None  # [key, union start, union codes list, members]
        for chrom, strand, o, i in located:
            lo, w = o - c, windows[i]
            if group is not None and group[0] == (chrom, strand) and lo < group[1] + len(group[2]):
                union = group[2]
                overlap = min(group[1] + len(union) - lo, len(w))
                start = lo - group[1]
                if np.array_equal(union[start : start + overlap], w[:overlap]):
                    if overlap < len(w):
                        group[2] = np.concatenate([union, w[overlap:]])
                    group[3].append((i, o - group[1]))
                    continue
            if group is not None:
                segments.append((min(m for m, _ in group[3]), group[2], group[3]))
            group = [(chrom, strand), lo, w, [(i, o - lo)]]
        if group is not None:
            segments.append((min(m for m, _ in group[3]), group[2], group[3]))
        for _, _, members in segments:
            for i, _ in members:
                placed[i] = True
    segments += [(i, windows[i], [(i, c)]) for i in range(len(genes)) if not placed[i]]
    segments.sort(key=lambda seg: seg[0])
    pieces: list[np.ndarray] = []
    offsets = [0] * len(genes)
    pos = 0
    prev_down_all_n = False
    for _, codes, members in segments:
        # the previous segment's all-N downstream flank doubles as this one's upstream flank
        skip = c if pieces and prev_down_all_n and bool((codes[:c] == _N_CODE).all()) else 0
        pieces.append(codes[skip:])
        for i, at in members:
            offsets[i] = pos + at - skip - c
        pos += len(codes) - skip
        prev_down_all_n = bool((codes[len(codes) - c :] == _N_CODE).all())
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
    return GenePack(list(genes), joined, offsets, c)
