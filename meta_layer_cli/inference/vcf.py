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
included) unchanged. A record that cannot be parsed (fewer than 8 columns, a POS that
is no positive integer, an empty or non-ASCII allele; :mod:`meta_layer_cli.io.vcf`) is
``MetaLayerSkip=malformed`` and a warning naming its line (a line with fewer than 8
columns gets ``.`` up to INFO); ``strict=True`` refuses the input at its first
malformed record instead, before anything is scored.

The tool's own fields of an earlier run never survive: ``SpliceAI``, ``MetaLayer`` and
``MetaLayerSkip`` values are replaced in place on the records this run scores and removed
from those it does not; their ``##INFO`` lines are replaced by this run's (the ``MetaLayer``
line removed when this run writes none), and so are the provenance lines
``##metalayer_score_vcf``, ``##metalayer_version`` and ``##metalayer_command``
(:mod:`meta_layer_cli.inference.vcf_shards`, which also has ``shard=``). What the tool wrote under
its earlier name (``MetaSplice=``, ``MetaSpliceSkip=``, their ``##INFO`` lines and every
``##metasplice_*`` line) is removed as well.

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

import contextlib
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meta_layer_cli.artifacts.cache import PredictionCache, as_cache
from meta_layer_cli.base_models import resolve_base_model
from meta_layer_cli.inference.spliceai_format import SPLICEAI_INFO
from meta_layer_cli.inference.vcf_scorer import MAX_WARNINGS_PER_REASON, SKIP_INFO, ScoringTask, VariantScorer
from meta_layer_cli.inference.vcf_shards import (
    COMMAND_TAG,
    SHARD_TAG,
    VERSION_TAG,
    call_summary,
    provenance_lines,
    shard_line,
)
from meta_layer_cli.io.annotation import GeneIndex, read_variant_annotation
from meta_layer_cli.io.atomic import check_output_file, refuse_overwriting_inputs
from meta_layer_cli.io.fasta import Fasta
from meta_layer_cli.io.vcf import (
    STDIN,
    IndexCheck,
    VcfHeader,
    VcfReader,
    VcfRecord,
    VcfWriter,
    check_index_target,
    is_seekable_file,
    rereadable,
)
from meta_layer_cli.runtime.errors import InputDataError, UsageError, reading
from meta_layer_cli.runtime.fingerprint import file_checksum
from meta_layer_cli.runtime.progress import Progress
from meta_layer_cli.runtime.shards import parse_shard, shard_block

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike

logger = logging.getLogger(__name__)

#: INFO keys this tool writes; an earlier run's values are replaced or removed.
OWN_FIELDS = ("SpliceAI", "MetaLayer", "MetaLayerSkip")
#: INFO keys and header lines the tool wrote under its earlier name (MetaSplice): always removed.
FORMER_FIELDS = ("MetaSplice", "MetaSpliceSkip")
FORMER_TAG = "##metasplice_"
SETTINGS_TAG = "##metalayer_score_vcf="


def output_header(
    header: VcfHeader, model, distance: int, mask: bool, meta_info: str | None, command: str, shard: str | None = None
) -> VcfHeader:
    """The input header with this run's INFO lines (replacing an earlier run's) and provenance lines."""
    info = SPLICEAI_INFO
    if model.name != "spliceai":
        info = info.replace(
            "SpliceAIv1.3.1 variant annotation", f"SpliceAI-format variant annotation from {model.name}"
        )
    lines = [info, SKIP_INFO] + ([meta_info] if meta_info else [])
    out = header.replacing_info(lines, drop=(*FORMER_FIELDS, *(() if meta_info else ("MetaLayer",))))
    out = out.without((SETTINGS_TAG, VERSION_TAG, COMMAND_TAG, SHARD_TAG, FORMER_TAG))
    out.meta.append(
        f"{SETTINGS_TAG}<base_model={model.name},weights_checksum={model.weights_checksum},context={model.context},"
        f"distance={distance},mask={int(mask)}>"
    )
    out.meta += provenance_lines(command) + ([shard] if shard else [])
    return out


@dataclass
class _Scan:
    """What a first pass over the input found: body lines, and which of them are records."""

    is_record: bytearray

    @property
    def lines(self) -> int:
        return len(self.is_record)

    def records(self, start: int = 0, end: int | None = None) -> int:
        return sum(self.is_record[start:end])


def _scan(path, name: str, strict: bool, index: bool) -> _Scan:
    """Count body lines and records; ``strict``: raise at the first malformed record; ``index``: raise at the
    first record tabix could not index."""
    flags = bytearray()
    check = IndexCheck(name) if index else None
    with VcfReader(path, name) as reader:
        for record in reader:
            flags.append(record.is_record)
            if strict and record.error is not None:
                raise InputDataError(
                    f"{name} line {record.line_number}: malformed record ({record.error}); "
                    "--strict stops here, before anything is scored"
                )
            if check is not None:
                check.add(record)
    return _Scan(flags)


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
    base_model=None,
    weights: str | os.PathLike | None = None,
    distance: int = 50,
    mask: bool = False,
    device: DeviceLike = None,
    progress: bool = True,
    *,
    cache: PredictionCache | str | os.PathLike | None = None,
    batch_size: int | None = None,
    chunk_size: int = 20_000,
    batched: bool = True,
    incremental: bool = True,
    checkpoints: Sequence[str | os.PathLike] | None = None,
    strict: bool = False,
    shard: str | tuple[int, int] | None = None,
    write_index: bool = False,
    command: str | None = None,
    models_dir: str | os.PathLike | None = None,
) -> dict:
    """Annotate a VCF with ``SpliceAI=`` delta scores from any base model (see the module docstring).

    Parameters
    ----------
    input, output : VCF paths (plain, gzip or bgzip in, detected by magic bytes; ``.gz``/``.bgz`` out is
        bgzip). ``-`` is standard input / output (plain VCF out); links, devices and FIFOs are written
        through, regular files atomically (:mod:`meta_layer_cli.io.atomic`).
    reference_fasta : FASTA (plain or bgzip) the VCF's coordinates refer to.
    annotation : ``grch37``, ``grch38``, a SpliceAI-style table, or a GTF/GFF3.
    base_model : a name for :func:`meta_layer_cli.load_base_model`, or a loaded model; None: the base model
        the first of ``checkpoints`` was trained on (found again by its record: ``weights``, else the
        recorded path, else the lookup in ``models_dir`` / ``$METALAYER_MODELS``), else ``spliceai``.
    weights, models_dir : where the base model's weights are (:mod:`meta_layer_cli.base_models.weights`).
    distance : D, the window half-width (SpliceAI's ``-D``), 0..4999.
    mask : SpliceAI's ``-M 1``.
    cache : a :class:`PredictionCache` or directory to reuse predictions across runs.
    chunk_size : records held in memory at once (batching happens within a chunk).
    batched : False runs the one-variant-at-a-time definition (for tests and benchmarks).
    incremental : predict ALT tracks from the shared reference activations (True) or as
        whole ALT windows (False); both equal the one-at-a-time definition.
    checkpoints : a ``metalayer train`` checkpoint (trained on this base model alone) and/or
        ``train-delta`` checkpoints: adds the ``MetaLayer=`` field, one entry per
        ``SpliceAI`` entry (:mod:`meta_layer_cli.inference.vcf_models`).
    strict : stop at the first malformed record (:class:`InputDataError` naming its line) before
        scoring anything; by default it is passed through with ``MetaLayerSkip=malformed``.
    shard : ``"K/N"``: score and write only the K-th of N contiguous blocks of body lines, under the
        full header (:mod:`meta_layer_cli.inference.vcf_shards`; ``merge_vcf`` joins the N outputs).
    write_index : also write a tabix index (``OUTPUT.tbi``); bgzip output to a file only.
    command : the ``##metalayer_command`` header text (default: a summary of this call's arguments).

    Every input line is written out, in order; a regular output file appears only
    when complete. A stream given as input (``-``, a FIFO) is spooled to a temporary
    file first when ``strict``, ``shard`` or ``write_index`` needs two passes over it.
    Progress (records done, records/s) is reported through
    :class:`~meta_layer_cli.runtime.progress.Progress`. Returns counts: ``records``,
    ``scored`` (records with at least one entry), ``entries``, ``skipped`` (by reason),
    ``alt_windows``, ``spliced_alts`` (of those, predicted from reference activations),
    ``ref_nt`` and ``seconds``.
    """
    if not 0 <= distance < 5000:
        raise UsageError(f"distance (-D) must be in 0..4999, got {distance}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UsageError(f"--batch-size {batch_size}: windows per forward pass must be a whole number >= 1")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise UsageError(f"chunk_size {chunk_size}: records held at once must be a whole number >= 1")
    part = parse_shard(shard) if shard is not None else None
    check_output_file(output, "--output")
    refuse_overwriting_inputs(
        {"--output": [output, *([f"{output}.tbi"] if write_index else [])]},
        {
            "--input": input,
            "--reference": reference_fasta,
            "--annotation": annotation,
            "--checkpoint": checkpoints,
            "--weights": weights,
        },
    )
    if write_index:
        check_index_target(output)
    if command is None:
        command = call_summary(
            "score_vcf",
            input=input,
            output=output,
            reference_fasta=reference_fasta,
            annotation=annotation,
            base_model=base_model
            if isinstance(base_model, str) or base_model is None
            else getattr(base_model, "name", "?"),
            weights=weights,
            distance=distance,
            mask=mask,
            checkpoints=checkpoints,
            strict=strict or None,
            shard=f"{part[0]}/{part[1]}" if part else None,
        )
    started = time.perf_counter()
    name = "<stdin>" if os.fspath(input) == STDIN else Path(input).name
    with contextlib.ExitStack() as stack:
        two_passes = strict or part is not None or write_index
        source = stack.enter_context(rereadable(input)) if two_passes else input
        # a first pass (cheap next to scoring) counts the records for the progress ETA and the shards
        scan = _scan(source, name, strict, write_index) if two_passes or is_seekable_file(input) else None
        start, end = shard_block(*part, scan.lines) if part is not None else (0, None)
        total = scan.records(start, end) if scan is not None else None
        model = _base_model(base_model, weights, device, checkpoints, models_dir)
        # a shard carries the plan and the input's checksum, so that merge-vcf refuses shards of another input
        plan = shard_line(*part, scan.lines, file_checksum(source)) if part is not None else None
        settings = ScoringSettings(
            distance,
            mask,
            device,
            progress,
            cache,
            batch_size,
            chunk_size,
            batched,
            incremental,
            checkpoints,
            command,
            write_index,
        )
        summary = _score(source, name, output, reference_fasta, annotation, model, settings, (start, end), total, plan)
    summary["seconds"] = time.perf_counter() - started
    return summary


@dataclass(frozen=True)
class ScoringSettings:
    """How score-vcf scores: its options, resolved (one object instead of a dozen positional parameters)."""

    distance: int
    mask: bool
    device: str
    progress: bool | None
    cache: object
    batch_size: int | None
    chunk_size: int
    batched: bool
    incremental: bool
    checkpoints: list | None
    command: str | None
    write_index: bool


def _base_model(base_model, weights, device: str, checkpoints, models_dir):
    """The base model to run: as given, else the first checkpoint's (found again by its record), else SpliceAI."""
    if base_model is None and checkpoints:
        from meta_layer_cli.inference.vcf_models import VcfCheckpoints

        record = VcfCheckpoints.base_record(checkpoints)
        logger.info(f"base model from {checkpoints[0]}: {record.describe()}")
        return resolve_base_model(record.load(device=device, weights=weights, models_dir=models_dir))
    return resolve_base_model(base_model or "spliceai", weights, device, models_dir)


def _score(
    source,
    name: str,
    output,
    reference_fasta,
    annotation,
    model,
    settings: ScoringSettings,
    block: tuple[int, int | None],
    total: int | None,
    shard: str | None,
) -> dict:
    """Score the records ``block`` (body lines ``[start, end)``) of ``source`` into ``output``."""
    st = settings
    with reading(f"annotation {annotation}"):  # the parsers name the line; anything they raise is the file's fault
        genes = GeneIndex(read_variant_annotation(annotation))
    fasta = Fasta(reference_fasta)
    extra, meta_info = None, None
    if st.checkpoints:
        from meta_layer_cli.inference.vcf_models import META_INFO, VcfCheckpoints

        extra, meta_info = VcfCheckpoints.load(st.checkpoints, model, st.device), META_INFO
    # one base-model pass serves both fields: with a meta model it covers the rows that model reads beyond +-D
    scorer = VariantScorer(
        model,
        fasta,
        genes,
        st.distance,
        st.mask,
        as_cache(st.cache),
        st.batch_size,
        st.incremental,
        margin=extra.margin if extra is not None else 0,
    )
    counts = Counter()
    with VcfReader(source, name) as reader:
        header = output_header(reader.header, model, st.distance, st.mask, meta_info, st.command, shard)
        with (
            VcfWriter(output, header, index=st.write_index) as writer,
            Progress(f"score-vcf ({model.name})", total=total, unit="records", enabled=st.progress) as bar,
        ):
            for chunk in _chunks(itertools.islice(reader, *block), st.chunk_size):
                tasks: list[ScoringTask] = []
                triaged = []
                for i, record in enumerate(chunk):
                    if not record.is_record:
                        triaged.append(None)
                        continue
                    triaged.append(scorer.triage(i, record, tasks))
                refs, alts = scorer.tracks(tasks, st.batched)
                scored = scorer.entries(tasks, refs, alts)
                meta_scored = extra.entries(scorer, tasks, refs, alts) if extra is not None else []
                done = 0
                for record, result in zip(chunk, triaged):
                    if result is None:
                        writer.write(record)
                        continue
                    done += 1
                    entries, reason = result
                    values = [scored[e] if isinstance(e, int) else e for e in entries]
                    info: dict[str, str | None] = {}
                    if values:
                        info["SpliceAI"] = ",".join(values)
                        counts["scored"] += 1
                        counts["entries"] += len(values)
                        if extra is not None:  # unscored allele x gene entries are all '.' already
                            info["MetaLayer"] = ",".join(
                                meta_scored[e] if isinstance(e, int) else f"{e}|.|.|." for e in entries
                            )
                    if reason is not None:
                        info["MetaLayerSkip"] = reason
                    # this run's fields replace an earlier run's; those it does not write are removed
                    writer.write(record, info, remove=(*OWN_FIELDS, *FORMER_FIELDS))
                counts["records"] += done
                bar.update(done, entries=f"{counts['entries']:,}")
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
    }
