"""Variant effect scores in a genome from any base model: ``score_vcf`` (SpliceAI-compatible
VCF annotation). Ref/alt sequence pairs without a genome (splicing assays) are scored by
:func:`meta_layer_cli.artifacts.sequences.score_sequences`.

``score_vcf``: the SpliceAI definition
--------------------------------------
With ``base_model="spliceai"`` the ``SpliceAI=ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|
DP_AG|DP_AL|DP_DG|DP_DL`` INFO field is computed exactly as ``spliceai`` 1.3.1
(``spliceai.utils.get_delta_scores``) computes it:

* a variant is scored against every annotated gene whose transcript span
  (``TX_START + 1 .. TX_END``, 1-based inclusive) contains its POS, one entry per
  ALT allele x gene, alleles outer, genes in annotation order;
* the reference window is ``wid = 2*context + 2*D + 1`` nt centred on POS, with
  every base outside the gene's transcript span replaced by N; the ALT window is
  that window with REF replaced by ALT; both are read on the gene's strand;
* scores cover the ``2*D + 1`` positions centred on POS; for a deletion
  (``len(REF) > 1``, ``len(ALT) == 1``) the ALT track gets ``len(REF) - 1`` zero
  rows after the anchor, for an insertion (``len(REF) == 1``, ``len(ALT) > 1``) the
  anchor and inserted rows collapse into their maximum; ``len(REF) > 1`` and
  ``len(ALT) > 1`` gives ``ALT|SYMBOL|.|.|.|.|.|.|.|.``;
* ``DS_AG = max(alt - ref)`` of the acceptor track and ``DP_AG`` its offset
  from POS (likewise AL = ``max(ref - alt)``, DG, DL on the donor track),
  formatted with 2 decimals; with ``mask=True`` a gain at the nearest annotated
  exon boundary and a loss anywhere else are set to 0 (SpliceAI's -M 1);
* sequence characters are encoded as SpliceAI encodes them: case-insensitive,
  N (and, as in its ``one_hot_encode``, any other letter whose code ``% 5`` is 0)
  as all-zero, other IUPAC letters as the base their code ``% 5`` selects.

The arithmetic lives in :mod:`meta_layer_cli.inference.spliceai_format`, the annotation
reader in :mod:`meta_layer_cli.io.annotation`.

Records SpliceAI would skip are skipped the same way (no ``SpliceAI`` entry) and
flagged ``MetaLayerSkip=REASON`` (see :data:`~meta_layer_cli.inference.vcf_scorer.SKIP_REASONS`).
Every input line is written out, in order, with its other columns (FORMAT and samples
included) unchanged; an existing ``SpliceAI`` value of a scored record is replaced in place,
and ``MetaLayer`` / ``MetaLayerSkip`` values of an earlier run are replaced or removed.

Deliberate deviations from the official tool, none of which changes a score it
produces: a record with at least one ALT allele that was not scored is flagged
``MetaLayerSkip``; breakend ALTs (``G]17:1]``) count as symbolic (SpliceAI would
score the bracket text as sequence); exon lists without a trailing comma keep
their last exon (SpliceAI drops it), and a table row whose exon start and end lists
differ in length is an error (SpliceAI pools them unpaired); a contig missing from the FASTA is a skip
(SpliceAI crashes when the annotation names it); chromosome names are matched
with and without ``chr`` (``chrM`` == ``MT``).

Other base models fill the same fields from their own tracks. Models with
acceptor/donor channels (OpenSpliceAI) use exactly the definition above with
their own context. Pangolin's channels are tissues (splice-site probability in
heart, liver, brain, testis) with no acceptor/donor split, so, as Pangolin
scores variants, each position's gain is the largest per-tissue increase and its
loss the largest per-tissue decrease (``max_t`` / ``min_t`` of ``alt_t - ref_t``):
``DS_AG = DS_DG`` = the largest gain in the window, ``DS_AL = DS_DL`` = minus the
largest loss, with their offsets; with ``mask=True`` gains at annotated exon
boundaries and losses elsewhere are zeroed position-wise before the maximum (as
Pangolin masks).

How the work is shared and batched (the outputs equal the one-at-a-time definition, ``batched=False``):
:mod:`meta_layer_cli.inference.vcf_scorer`.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from meta_layer_cli.artifacts.cache import PredictionCache, as_cache
from meta_layer_cli.base_models import resolve_base_model
from meta_layer_cli.inference.spliceai_format import SPLICEAI_INFO
from meta_layer_cli.inference.vcf_scorer import MAX_WARNINGS_PER_REASON, SKIP_INFO, ScoringTask, VariantScorer
from meta_layer_cli.io.annotation import GeneIndex, read_variant_annotation
from meta_layer_cli.io.fasta import Fasta
from meta_layer_cli.io.vcf import VcfHeader, VcfReader, VcfRecord, VcfWriter

logger = logging.getLogger(__name__)


def _output_header(header: VcfHeader, model, distance: int, mask: bool) -> VcfHeader:
    """The input header plus the SpliceAI / MetaLayerSkip INFO lines and a provenance line."""
    info = SPLICEAI_INFO
    if model.name != "spliceai":
        info = info.replace(
            "SpliceAIv1.3.1 variant annotation", f"SpliceAI-format variant annotation from {model.name}"
        )
    out = header.with_info([info, SKIP_INFO])
    tag = "##metalayer_score_vcf="
    out.meta = [m for m in out.meta if not m.startswith(tag)]
    out.meta.append(
        f"{tag}<base_model={model.name},weights_checksum={model.weights_checksum},context={model.context},"
        f"distance={distance},mask={int(mask)}>"
    )
    return out


def _chunks(records: Iterable[VcfRecord], size: int) -> Iterable[list[VcfRecord]]:
    chunk: list[VcfRecord] = []
    for r in records:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_vcf(
    input: str | os.PathLike,
    output: str | os.PathLike,
    reference_fasta: str | os.PathLike,
    annotation: str | os.PathLike,
    base_model="spliceai",
    weights: str | os.PathLike | None = None,
    distance: int = 50,
    mask: bool = False,
    device: str = "cpu",
    progress: bool = True,
    *,
    cache: PredictionCache | str | os.PathLike | None = None,
    batch_size: int | None = None,
    chunk_size: int = 20_000,
    batched: bool = True,
    incremental: bool = True,
    checkpoints: Sequence[str | os.PathLike] | None = None,
) -> dict:
    """Annotate a VCF with ``SpliceAI=`` delta scores from any base model (see the module docstring).

    Parameters
    ----------
    input, output : VCF paths (plain, gzip or bgzip in; ``.gz``/``.bgz`` out is bgzip).
    reference_fasta : FASTA (plain or bgzip) the VCF's coordinates refer to.
    annotation : ``grch37``, ``grch38``, a SpliceAI-style table, or a GTF/GFF3.
    base_model : a name for :func:`meta_layer_cli.load_base_model`, or a loaded model.
    distance : D, the window half-width (SpliceAI's ``-D``), 0..4999.
    mask : SpliceAI's ``-M 1``.
    cache : a :class:`PredictionCache` or directory to reuse predictions across runs.
    chunk_size : records held in memory at once (batching happens within a chunk).
    batched : False runs the one-variant-at-a-time definition (for tests and benchmarks).
    incremental : predict ALT tracks from the shared reference activations (True) or as
        whole ALT windows (False); both equal the one-at-a-time definition.
    checkpoints : a ``metalayer train`` checkpoint (trained on this base model alone) and/or
        ``train-variants`` checkpoints: adds the ``MetaLayer=`` field, one entry per
        ``SpliceAI`` entry (:mod:`meta_layer_cli.inference.vcf_models`).

    Every input line is written out, in order; the output file appears only
    when complete. Returns counts: ``records``, ``scored`` (records with at
    least one entry), ``entries``, ``skipped`` (by reason), ``alt_windows``,
    ``spliced_alts`` (of those, predicted from reference activations), ``ref_nt``
    and ``seconds``.
    """
    if not 0 <= distance < 5000:
        raise ValueError(f"distance (-D) must be in 0..4999, got {distance}")
    started = time.perf_counter()
    model = resolve_base_model(base_model, weights, device)
    genes = GeneIndex(read_variant_annotation(annotation))
    fasta = Fasta(reference_fasta)
    scorer = VariantScorer(model, fasta, genes, distance, mask, as_cache(cache), batch_size, incremental)
    extra = None
    if checkpoints:
        from meta_layer_cli.inference.vcf_models import META_INFO, VcfCheckpoints

        extra = VcfCheckpoints.load(checkpoints, model, device)
    counts = Counter()
    with VcfReader(input) as reader:
        header: VcfHeader = _output_header(reader.header, model, distance, mask)
        if extra is not None:
            header = header.with_info([META_INFO])
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[n]}"),
            TimeElapsedColumn(),
        ]
        with (
            VcfWriter(output, header) as writer,
            Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar,
        ):
            job = bar.add_task(f"score-vcf ({model.name})", total=None, n="")
            for chunk in _chunks(reader, chunk_size):
                tasks: list[ScoringTask] = []
                triaged = []
                for i, record in enumerate(chunk):
                    if not record.is_record:
                        triaged.append(None)
                        continue
                    counts["records"] += 1
                    triaged.append(scorer.triage(i, record, tasks))
                scored = scorer.entries(tasks, batched)
                meta_scored = extra.entries(scorer, tasks) if extra is not None else []
                for record, result in zip(chunk, triaged):
                    if result is None:
                        writer.write(record)
                        continue
                    entries, reason = result
                    values = [scored[e] if isinstance(e, int) else e for e in entries]
                    info: dict[str, str | None] = {}
                    if values:
                        info["SpliceAI"] = ",".join(values)
                        counts["scored"] += 1
                        counts["entries"] += len(values)
                        if extra is not None:  # unscored allele x gene entries are all '.' already
                            info["MetaLayer"] = ",".join(meta_scored[e] if isinstance(e, int) else f"{e}|.|.|."
                                                          for e in entries)  # fmt: skip
                    if reason is not None:
                        info["MetaLayerSkip"] = reason
                    # drop stale fields from an earlier run
                    writer.write(record, info, remove=("MetaLayerSkip", "MetaLayer"))
                bar.update(job, n=f"{counts['records']:,} records, {counts['entries']:,} entries")
    fasta.close()
    for reason, n in scorer.warned.items():
        if n > MAX_WARNINGS_PER_REASON:
            logger.warning(f"... {n - MAX_WARNINGS_PER_REASON} more records not scored ({reason}), see MetaLayerSkip")
    return {
        "records": counts["records"],
        "scored": counts["scored"],
        "entries": counts["entries"],
        "skipped": dict(scorer.skipped),
        "alt_windows": scorer.stats["alt_windows"],
        "spliced_alts": scorer.stats["spliced_alts"],
        "ref_nt": scorer.stats["ref_nt"],
        "seconds": time.perf_counter() - started,
    }
