"""Canonical training and evaluation (``metalayer train-canonical``, ``metalayer evaluate --checkpoint``).

Data come from prepared tracks folders (``metalayer prepare``: any genome and annotation, one
folder per base model when several are stacked) or from the built-in demo genes, whose tracks are
predicted once into a cache keyed by the base model's weights checksum. Genes are split by
chromosome (SpliceAI's test chromosomes by default) when they come from a genome, by gene
otherwise, or as ``split.method`` says (``gene``, ``block``: any assembly); validation genes always
come from the training side. The run folder is guarded by
:class:`~meta_layer_cli.jobs.run_folder.RunFolder` (lock, ``--resume``, ``--if-changed``).

A checkpoint records what it needs to be used elsewhere and nothing machine-local: the base
models' records (:class:`~meta_layer_cli.base_models.record.BaseModelRecord`), the fingerprint of
the genes it was trained on, the split, thresholds and the gene-structure decoder.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meta_layer_cli.artifacts import (
    DemoSource,
    GeneArrays,
    common_gene_ids,
    gene_lengths,
    load_gene_arrays,
    predict_tracks,
    read_manifest,
)
from meta_layer_cli.artifacts.sources import announce_cache, default_cache_dir, resolve_gene_names, source_fingerprint
from meta_layer_cli.artifacts.tracks import gene_track_path, manifest_genes, manifest_record, require_complete
from meta_layer_cli.base_models import load_base_model
from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.atomic import refuse_overwriting_inputs, write_json_atomic
from meta_layer_cli.io.contigs import chromosome_names, strip_chr
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_info, demo_gene_length
from meta_layer_cli.jobs.run_folder import FolderPolicy, run_outputs
from meta_layer_cli.models.checkpoint import CanonicalCheckpoint, write_split_table
from meta_layer_cli.runtime.device import resolve_device
from meta_layer_cli.runtime.errors import InputDataError, UsageError
from meta_layer_cli.runtime.fingerprint import value_checksum
from meta_layer_cli.runtime.progress import phase
from meta_layer_cli.training.config import SPLICEAI_TEST_CHROMOSOMES, RunConfig, load_run_config
from meta_layer_cli.training.splits import LOCUS_KEYS, Locus, SplitImpossible, gene_locus, overlapping_genes, same_build

if TYPE_CHECKING:
    import polars as pl

logger = logging.getLogger(__name__)

_ALIASES = {
    "epochs": "training.epochs",
    "sequence_encoder": "model.sequence_encoder",
    "device": "hardware.device",
    "test_chroms": "split.test_chromosomes",
    "split": "split.method",
    "test_fraction": "split.test",
    "max_minutes": "training.max_minutes",
}


def builtin_config(name: str) -> Path:
    """Path of a config shipped with the package (``default``, ``lightweight``, ``hyena``, ``variants``)."""
    from importlib.resources import files

    path = Path(str(files("meta_layer_cli.configs") / f"{name}.yaml"))
    if not path.is_file():
        raise UsageError(f"no built-in config {name!r} (default, lightweight, hyena, variants)")
    return path


def default_demo_genes(n_genes: int) -> list[str]:
    """The ``n_genes`` shortest demo genes (cheap to predict on 2 CPU cores), by id."""
    ids = sorted(demo_gene_ids(), key=lambda g: (demo_gene_length(g), int(g)))
    return sorted(ids[:n_genes], key=int)


@dataclass
class CanonicalResult:
    """What :func:`run_canonical_training` returns."""

    canonical_test_metrics: dict
    base_test_metrics: dict | None
    checkpoint_path: Path
    output_dir: Path
    split: dict
    history: list[dict]
    thresholds: dict
    timing: dict
    channels: list[str]
    variant_evaluation: object | None = None
    reliability: dict = field(default_factory=dict)
    pr_curves: dict = field(default_factory=dict)
    # test metrics of further variants, e.g. "meta_per_nucleotide" (the meta model without the decoder)
    extra_test_metrics: dict = field(default_factory=dict)
    tracks_dirs: list[Path] = field(default_factory=list)  # the tracks folders it trained on, one per base model
    base_models: list[BaseModelRecord] = field(default_factory=list)
    split_rule: str = ""  # how the genes were split, in words (describe_split)
    # the best checkpoint as loaded once by finish_canonical_run: (model, config), passed on to the report
    loaded: tuple | None = field(default=None, repr=False)


def resolve_canonical_config(
    config=None, overrides: dict | None = None, profile: str | None = None, **arguments
) -> RunConfig:
    """Merge a config (path, dict or :class:`RunConfig`), a hardware ``profile`` and keyword arguments.

    Arguments left at None do not override the config; each is a flag's name (``epochs``, ``test_chroms``), a
    top-level key or ``section__key``. ``overrides`` use ``"section.key"`` (or ``section__key``) keys.
    """
    dotted = {}
    for key, value in arguments.items():
        if value is None:
            continue
        dotted[_ALIASES.get(key, key.replace("__", "."))] = str(value) if isinstance(value, os.PathLike) else value
    if "data" in dotted:
        dotted["data"] = [
            str(d) for d in ([dotted["data"]] if isinstance(dotted["data"], (str, os.PathLike)) else dotted["data"])
        ]
    for key, value in (overrides or {}).items():
        dotted[key.replace("__", ".")] = value
    return load_run_config(config, dotted, profile)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainingData:
    """The tracks a run trains on: one folder per base model, the genes finished in all of them.

    What the run needs of each gene (contig, strand, span, length) is one table, ``genes``, not a dict per
    field: four dicts of strings and tuples held ~600 bytes a gene through the whole run (traced at 95,856 genes:
    60 MB); the dicts a split or a message needs are built when asked."""

    dirs: list[Path]
    records: list[BaseModelRecord]
    gene_ids: list[str]
    genomic: bool  # genes come from a genome (chromosome split possible)
    source: dict  # fingerprint of the genes (shared by every folder)
    dataset: str | None  # "demo" when the built-in genes were used
    genes: pl.DataFrame  # GENE_COLUMNS: gene_id, chrom, strand, start (0-based), end, length (nt); null if unknown
    contig_chromosomes: dict[str, str] = field(default_factory=dict)  # contig -> chromosome its FASTA header names
    genome_build: str | None = None
    # each folder's manifest fingerprint: base model, weights, context, tracks dtype, stored flank, genome...
    tracks: list[dict] = field(default_factory=list)

    def describe(self) -> dict:
        """What a checkpoint records about its data (no paths)."""
        return {"dataset": self.dataset, "source": self.source, "genes": value_checksum(sorted(self.gene_ids))}

    def chromosomes(self) -> dict[str, str]:
        """gene -> contig ("" where unknown): built when asked (a split, a message), not held."""
        return dict(zip(self.genes["gene_id"].to_list(), self.genes["chrom"].fill_null("").to_list()))

    def loci(self) -> dict[str, tuple[str, int, int]]:
        """gene -> (contig, start, end) of the genes with coordinates: what a block split orders genes by."""
        known = self.genes.drop_nulls(["chrom", "start", "end"])
        return {g: (c, s, e) for g, c, s, e in known.select("gene_id", "chrom", "start", "end").iter_rows()}

    def places(self) -> Iterator[tuple[str, str, str, int, int]]:
        """``(gene_id, *locus)`` of the genes with coordinates (:func:`gene_locus`): what a checkpoint records."""
        return gene_places(self.genes)

    def nucleotides(self, gene_ids: Sequence[str]) -> int:
        """Nucleotides of ``gene_ids`` (transcripts, without flanks)."""
        import polars as pl

        return int(self.genes.filter(pl.col("gene_id").is_in(list(gene_ids)))["length"].fill_null(0).sum())


GENE_COLUMNS = ("gene_id", "chrom", "strand", "start", "end", "length")


def gene_places(genes: pl.DataFrame) -> Iterator[tuple[str, str, str, int, int]]:
    """``(gene_id, *locus)`` of the rows of a :func:`gene_table` that have a locus (:func:`gene_locus`)."""
    for row in genes.select("gene_id", *LOCUS_KEYS).iter_rows(named=True):
        locus = gene_locus(row)
        if locus is not None:
            yield (row["gene_id"], *locus)


def gene_table(columns: dict[str, Sequence]) -> pl.DataFrame:
    """:class:`TrainingData`'s per-gene table from ``columns`` (:data:`GENE_COLUMNS`; a missing one is null)."""
    import polars as pl

    n = len(columns["gene_id"])
    schema = dict(zip(GENE_COLUMNS, (pl.Utf8, pl.Utf8, pl.Utf8, pl.Int64, pl.Int64, pl.Int64)))
    return pl.DataFrame({k: list(columns.get(k) or [None] * n) for k in GENE_COLUMNS}, schema=schema)


def demo_tracks(model, gene_ids: list[str], cache: str | os.PathLike | None, progress: bool = True) -> Path:
    """Demo-gene tracks of one base model in the cache (keyed by model and weights checksum), resumable."""
    directory = Path(cache).expanduser() if cache else default_cache_dir()
    directory = directory / "tracks" / f"{model.name}-{model.weights_checksum}"
    if not cache and any(not gene_track_path(directory, g).is_file() for g in gene_ids):
        announce_cache(f"{model.name} tracks of {len(gene_ids)} demo genes")
    predict_tracks(model, DemoSource(gene_ids), directory, genome_build="hg19", progress=progress)
    return directory


def training_data(cfg: RunConfig, progress: bool = True, allow_partial: bool = False) -> TrainingData:
    """The run's tracks: the config's prepared folders (checked against its base models), or demo-gene
    tracks predicted into the cache."""
    if cfg.data:
        dirs = [Path(d).expanduser() for d in cfg.data]
        manifests = [read_manifest(d) for d in dirs]
        records = [manifest_record(m) for m in manifests]
        if cfg.base_model is not None:
            specs = cfg.base_models()
            if len(specs) != len(dirs):
                raise UsageError(f"{len(specs)} base model(s) for {len(dirs)} --data folder(s); give one folder each")
            for (name, weights), record, d in zip(specs, records, dirs):
                if name != record.name:
                    raise InputDataError(f"{d} holds {record.name} tracks, not {name} (--base-model)")
                if weights is not None:
                    record.require(
                        load_base_model(
                            name, weights=weights, device="cpu", flank=cfg.flank, models_dir=cfg.models_dir
                        ),
                        str(d),
                    )
        for d, m in zip(dirs, manifests):
            require_complete(d, m, allow_partial)
        sources = [source_fingerprint(m["fingerprint"]) for m in manifests]
        if any(s != sources[0] for s in sources[1:]):
            raise InputDataError("the --data folders were prepared from different genomes or annotations")
        ids = common_gene_ids(dirs, manifests)
        import polars as pl

        planned = manifest_genes(manifests[0])
        genes = planned.frame.select(GENE_COLUMNS).filter(pl.col("gene_id").is_in(ids))
        genomic = manifests[0]["source"].get("kind") == "fasta" or manifests[0]["source"].get("from") == "fasta"
        data = TrainingData(
            dirs,
            records,
            ids,
            genomic,
            sources[0],
            None,
            genes,
            dict(manifests[0]["source"].get("chromosomes") or {}),
            genome_build=manifests[0]["source"].get("genome_build"),
            tracks=[m["fingerprint"] for m in manifests],
        )
    else:
        if cfg.genes:
            ids = list(cfg.genes)
        elif cfg.train_genes is not None and cfg.test_genes is not None:
            ids = []
        else:
            ids = default_demo_genes(cfg.max_genes) if cfg.max_genes else demo_gene_ids()
        ids = list(dict.fromkeys([*ids, *(cfg.train_genes or []), *(cfg.test_genes or [])]))
        dirs, records = [], []
        for name, weights in cfg.base_models():
            model = load_base_model(
                name,
                weights=weights,
                device=cfg.hardware.device,
                flank=cfg.flank,
                models_dir=cfg.models_dir,
                dtype=cfg.hardware.dtype,
            )
            dirs.append(demo_tracks(model, ids, cfg.tracks_cache, progress))
            records.append(BaseModelRecord.of(model))
        info = demo_gene_info()
        # demo genes are hg19 genes: their hg19 spans (1-based inclusive in the table) are their places
        places = [info.get(g, {}) for g in ids]
        genes = gene_table(
            {
                "gene_id": ids,
                "chrom": [p.get("chrom", "") for p in places],
                "strand": [p.get("strand") for p in places],
                "start": [p["hg19_start"] - 1 if p.get("hg19_start") is not None else None for p in places],
                "end": [p.get("hg19_end") if p.get("hg19_start") is not None else None for p in places],
                "length": [demo_gene_length(g) for g in ids],
            }
        )
        fingerprints = [read_manifest(d)["fingerprint"] for d in dirs]
        data = TrainingData(
            dirs,
            records,
            ids,
            False,
            source_fingerprint(fingerprints[0]),
            "demo",
            genes,
            genome_build="GRCh37",
            tracks=fingerprints,
        )
        return data
    if cfg.genes or cfg.max_genes:
        wanted = list(cfg.genes) if cfg.genes else data.gene_ids[: cfg.max_genes]
        known = set(data.gene_ids)
        unknown = [g for g in wanted if g not in known]
        if unknown:
            raise InputDataError(f"gene(s) not in the prepared data: {', '.join(unknown[:10])}")
        data.gene_ids = wanted
    return data


def split_for(cfg: RunConfig, data: TrainingData):
    """The gene split of a run (see :class:`~meta_layer_cli.training.config.SplitSection`).

    A chromosome split finds a test chromosome by the contig's name (``chr`` optional) or by the chromosome
    its FASTA header names (prepare records it: ``NC_000001.11`` is chromosome 1); when none of the genes' contigs
    matches, the error lists the contigs there are and the ways out (``--test-chroms``, ``--split gene|block``).
    """
    from meta_layer_cli.training import split_genes

    method = cfg.split.method
    if method == "auto":
        method = "chromosome" if data.genomic else "gene"
    explicit = cfg.train_genes is not None or cfg.test_genes is not None
    test_chromosomes, loci = None, None
    chromosomes = data.chromosomes()
    if method == "chromosome" and not explicit:
        wanted = set().union(*(chromosome_names(c) for c in cfg.split.test_chromosomes))
        test_chromosomes = sorted(
            {c for c in set(chromosomes.values()) if chromosome_names(c, data.contig_chromosomes) & wanted}
        )
        if not test_chromosomes:
            raise InputDataError(
                f"no genes on the test chromosomes {', '.join(cfg.split.test_chromosomes)}: the "
                f"data's contigs are {_contigs_listed(data)}; name some with --test-chroms, or split "
                "by gene: --split gene or --split block (blocks of neighbouring genes)"
            )
    elif method == "block" and not explicit:
        loci = data.loci()
    return split_genes(
        data.gene_ids,
        cfg.split.seed,
        cfg.split.validation,
        cfg.split.test,
        cfg.train_genes,
        cfg.test_genes,
        chromosomes,
        test_chromosomes,
        loci,
    )


def _contigs_listed(data: TrainingData, shown: int = 12) -> str:
    """``NC_000001.11 (chromosome 1, 812 genes), ...``: the contigs with most genes first."""
    counts: dict[str, int] = {}
    for contig in data.genes["chrom"].fill_null("").to_list():
        counts[contig] = counts.get(contig, 0) + 1
    order = sorted(counts, key=lambda c: (-counts[c], c))
    listed = [
        f"{c} ("
        + (f"chromosome {data.contig_chromosomes[c]}, " if c in data.contig_chromosomes else "")
        + f"{counts[c]:,} gene{'s' if counts[c] != 1 else ''})"
        for c in order[:shown]
    ]
    more = f" and {len(order) - shown:,} more" if len(order) > shown else ""
    return ", ".join(listed) + more


#: how a user of train-canonical changes the split (the pipeline names its config keys instead)
SPLIT_OPTIONS = {
    "test_chroms": "--test-chroms {chrom}",
    "gene_split": "--split gene --test-fraction 0.2, or --split block",
    "shares": "--test-fraction, --set split.validation=0.05",
}


def checked_split(cfg: RunConfig, data: TrainingData, options: dict[str, str] | None = None):
    """:func:`split_for`, with a split that cannot be made explained: which test chromosomes were used, where the
    genes lie, and the options that fix it (``options``, default :data:`SPLIT_OPTIONS`: ``--test-chroms``, or
    a gene split, ``--split gene|block --test-fraction``)."""
    try:
        return split_for(cfg, data)
    except SplitImpossible as err:
        problem = str(err.args[0] if err.args else err)
        if cfg.train_genes is not None or cfg.test_genes is not None:  # the user's own lists: the message says it
            raise InputDataError(problem) from None
        raise InputDataError(split_advice(problem, cfg, data, options or SPLIT_OPTIONS)) from None


def split_advice(problem: str, cfg: RunConfig, data: TrainingData, options: dict[str, str]) -> str:
    """``problem`` (a split that cannot be made) with what it was made from and how to fix it."""
    from collections import Counter

    chromosomes = data.chromosomes()
    per_chrom = Counter(chromosomes.get(g) or "?" for g in data.gene_ids)
    if split_method(cfg, data) == "chromosome":
        wanted = set().union(*(chromosome_names(c) for c in cfg.split.test_chromosomes))
        held = sum(n for c, n in per_chrom.items() if chromosome_names(c, data.contig_chromosomes) & wanted)
        default = " (SpliceAI's, the default)" if cfg.split.test_chromosomes == SPLICEAI_TEST_CHROMOSOMES else ""
        # a contig holding about a fifth of the genes: a test set of the usual size
        suggested = min(per_chrom, key=lambda c: (abs(per_chrom[c] - 0.2 * len(data.gene_ids)), c))
        return (
            f"{problem}: the test chromosomes {', '.join(cfg.split.test_chromosomes)}{default} hold {held:,} of "
            f"the {len(data.gene_ids):,} genes (the data's contigs: {_contigs_listed(data)}); hold out fewer "
            f"chromosomes (e.g. {options['test_chroms'].format(chrom=suggested)}), or split by gene instead "
            f"({options['gene_split']})"
        )
    return (
        f"{problem}: {len(data.gene_ids)} genes in all, validation {cfg.split.validation:g} and test "
        f"{cfg.split.test:g} of them; use more genes, or smaller shares ({options['shares']})"
    )


def describe_split(split: dict, chromosomes: dict[str, str], method: str | None = None) -> str:
    """How ``split`` divides the genes, in words: by chromosome (naming the held-out ones) when no training or
    validation gene shares a chromosome with a test gene; else by blocks of neighbouring genes when ``method``
    (the config's ``split.method``, resolved) says so, else by gene."""
    test_chroms = sorted({chromosomes.get(g) or "" for g in split["test"]} - {""}, key=strip_chr)
    seen = {chromosomes.get(g) or "" for g in split["train"] + split["validation"]}
    if test_chroms and not seen & set(test_chroms):
        return f"split by chromosome (held out: {', '.join(test_chroms)})"
    return "split by blocks of neighbouring genes" if method == "block" else "split by gene"


def split_method(cfg: RunConfig, data: TrainingData) -> str:
    """The split rule a run uses: ``chromosome``, ``gene`` or ``block`` (``auto`` resolved), or ``given``."""
    if cfg.train_genes is not None or cfg.test_genes is not None:
        return "given"
    if cfg.split.method == "auto":
        return "chromosome" if data.genomic else "gene"
    return cfg.split.method


def describe_weights(record: BaseModelRecord) -> str:
    """Which weights a base-model record names, for a user: the path where this process loaded them (prepared
    folders and checkpoints record no paths), the checksum, the flank; for OpenSpliceAI the size of the model (a
    folder of flank sizes gives the 10,000-nt one unless --flank)."""
    where = record.weights or ("the files packaged with spliceai" if record.name == "spliceai" else None)
    text = f"{record.name} weights{f' {where}' if where else ''} (checksum {record.weights_checksum[:12]}, "
    text += f"context {record.context:,} nt"
    if record.name == "openspliceai":
        text += f" each side: the {record.flank:,}-nt model"
        if record.flank == 10_000:
            text += ", the largest and slowest; `--flank 80|400|2000` picks a smaller one from a folder of flank sizes"
    return text + ")"


def run_start_lines(data: TrainingData, split: dict, method: str | None = None) -> list[str]:
    """What a run says before it trains: the weights, and genes and nucleotides per part of the split."""
    lines = [f"base model: {describe_weights(r)}" for r in data.records]
    parts = []
    for name, key in (("training", "train"), ("validation", "validation"), ("held-out test", "test")):
        nt = data.nucleotides(split[key])
        size = f" ({nt / 1e6:,.1f} M nt)" if nt >= 1e6 else f" ({nt:,} nt)" if nt else ""
        parts.append(f"{len(split[key]):,} {name} genes{size}")
    lines.append(f"genes: {', '.join(parts)}; {describe_split(split, data.chromosomes(), method)}")
    return lines


def run_fingerprint(cfg: RunConfig, data: TrainingData) -> dict:
    """What decides whether a finished run is still up to date: the data and every setting but hardware. The data
    is everything that changes the tracks' values: each folder's manifest fingerprint (base model, weights,
    context, the tracks' dtype, stored flank, genome and annotation), named key by key so that a refusal says
    what changed (``tracks dtype: float32 -> bfloat16``)."""
    settings = cfg.model_dump(exclude={"hardware", "output_dir", "tracks_cache", "data", "models_dir"})
    settings["training"].pop("progress", None)
    tracks = {}
    for i, fingerprint in enumerate(data.tracks):
        prefix = "tracks" if len(data.tracks) == 1 else f"tracks {i + 1}"
        tracks.update({f"{prefix} {key}": value for key, value in fingerprint.items()})
    return {
        "base models": [f"{r.name} {r.weights_checksum}" for r in data.records],
        **tracks,
        "genes": value_checksum([data.source, sorted(data.gene_ids)]),
        "config": value_checksum(settings),
    }


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def run_canonical_training(
    config: str | os.PathLike | dict | RunConfig | None = None,
    *,
    profile: str | os.PathLike | None = None,
    overrides: dict | None = None,
    folder: FolderPolicy | None = None,
    allow_partial: bool = False,
    variant_sets: list | None = None,
    **settings,
) -> CanonicalResult:
    """Train the meta-layer and evaluate it against its base model on held-out genes.

    ``config``: a YAML path, a dict or a :class:`RunConfig` (default: the package's ``default`` config);
    ``profile`` a hardware profile (``cpu``, ``m1``, ``gpu`` or a YAML file). ``settings`` are the command
    line's flags by name, each overriding its config key when not None:
    ``base_model``, ``base_weights``, ``flank``, ``data``, ``dataset``, ``train_genes``, ``test_genes``,
    ``test_chroms``, ``split``, ``test_fraction``, ``epochs``, ``max_minutes``, ``sequence_encoder``,
    ``device``, ``output_dir``; any other config key is given as a top-level key (``max_genes=50``,
    ``tracks_cache=...``) or ``section__key=value`` (``training__lr=1e-3``), or in ``overrides`` as
    ``{"training.lr": 1e-3}``. An unknown key is refused by the config's own check, naming it.

    ``data``: prepared tracks folder(s) (``metalayer prepare``); without it the built-in demo genes
    (tracks cached in ``tracks_cache``). The base model's weights are found as
    :func:`~meta_layer_cli.base_models.weights.find_weights` documents (``base_weights``, then the
    config's ``models_dir``, then ``$METALAYER_MODELS``). Genes are split by chromosome for genome data
    (``test_chroms``, default SpliceAI's 1, 3, 5, 7, 9) and by gene for the demo set, or by ``split``
    (``chromosome``, ``gene`` or ``block``, holding out ``test_fraction`` of the genes);
    ``train_genes``/``test_genes`` fix the split; ``allow_partial`` trains on the finished genes of an
    unfinished prepared folder (refused otherwise: :func:`~meta_layer_cli.artifacts.tracks.require_complete`).
    ``variant_sets``: measured variant tables (polars frames, paths or ``{"loader": "vexseq", "path": ...}``)
    on which the trained model's meta(alt) − meta(ref) is compared with the measured effect
    (``result.variant_evaluation``).

    ``folder``: what to do with an output folder that already holds a run
    (:class:`~meta_layer_cli.jobs.run_folder.FolderPolicy`; the library's default retrains into a finished
    folder, the command line refuses unless told). Writes ``checkpoints/best`` (safetensors + JSON),
    ``metrics.json``, ``report.html``, ``train.log``. Returns a :class:`CanonicalResult`.
    """
    from meta_layer_cli.runtime.progress import Progress
    from meta_layer_cli.training.trainer import distributed_rank

    cfg = resolve_canonical_config(config, overrides, profile, **settings)
    # one phase around everything, so that no stretch of the run (loading, the finishing evaluation) is silent
    with Progress("train-canonical", bar=False, enabled=cfg.training.progress and distributed_rank()[0] == 0):
        config_file = config if isinstance(config, (str, os.PathLike)) else None
        return _train_canonical(cfg, variant_sets, folder or FolderPolicy(), allow_partial, config_file)


def _train_canonical(
    cfg: RunConfig,
    variant_sets: list | None,
    policy: FolderPolicy,
    allow_partial: bool,
    config_file: str | os.PathLike | None,
) -> CanonicalResult:
    from meta_layer_cli.models import build_meta_model
    from meta_layer_cli.runtime.device import set_threads
    from meta_layer_cli.runtime.progress import Progress
    from meta_layer_cli.training import Trainer, TrainerConfig
    from meta_layer_cli.training.trainer import BEST, distributed_rank

    set_threads(cfg.hardware.threads)
    out = Path(cfg.output_dir)
    refuse_overwriting_inputs(
        {"--out": run_outputs(out)}, {"--data": cfg.data, "--weights": cfg.base_weights, "--config": config_file}
    )
    rank, world = distributed_rank()
    timing: dict[str, float] = {}
    started = time.perf_counter()
    if rank == 0:
        tracks = training_data(cfg, cfg.training.progress, allow_partial)
    _barrier()
    if rank != 0:
        tracks = training_data(cfg, False, allow_partial)
    timing["base_tracks_s"] = round(time.perf_counter() - started, 2)
    split = checked_split(cfg, tracks)
    fingerprint = run_fingerprint(cfg, tracks)
    folder = policy.open(out, fingerprint, "canonical") if rank == 0 else None
    if folder is not None:
        folder.__enter__()
    try:
        _barrier()
        # each rank holds only its own share of the training genes' tracks
        # arrays are read from the gene store as they are needed: nothing grows with the genome
        shown = cfg.training.progress and rank == 0
        channels, train = load_gene_arrays(tracks.dirs, split.train[rank::world], progress=shown)
        if world > 1:
            logger.info(f"rank {rank}/{world}: {len(train)} of {len(split.train)} training genes sampled by this rank")
        _, val = load_gene_arrays(tracks.dirs, split.validation, progress=shown)
        # the test genes are rank 0's alone (it evaluates): read here, so the start-of-run estimate can count them
        test = load_gene_arrays(tracks.dirs, split.test, progress=shown)[1] if rank == 0 else []
        if rank == 0:  # said once the data is read: a file that cannot be read stops the run before this
            for line in run_start_lines(tracks, split.to_dict(), split_method(cfg, tracks)):
                logger.info(line)
        # the initialisation is the config's seed's: before, it depended on what the process had drawn
        # earlier (base-model loading), so one config trained differently from one code version to the next
        model = build_meta_model(cfg.model.model_copy(update={"channels": channels}), seed=cfg.training.seed)
        trainer_config = TrainerConfig(
            **cfg.training.model_dump(),
            device=cfg.hardware.device,
            batch_size=cfg.hardware.batch_size,
            amp=cfg.hardware.amp,
        )
        resuming = folder.resuming if folder is not None else True
        finishing_s = None
        if shown and not resuming:  # the start-of-run estimate covers the finishing phase too
            finishing_s = estimate_finishing_seconds(model, channels, (val, test), cfg.hardware.device, cfg.structure)
        started = time.perf_counter()
        with Progress("training", bar=False, enabled=None):  # its set-up (normaliser, samplers) has no lines of its own
            state = Trainer(trainer_config).fit(
                model, channels, train, val, out / "checkpoints", resume=resuming, finishing_s=finishing_s
            )
        timing["training_s"] = round(time.perf_counter() - started, 2)
        checkpoint = out / "checkpoints" / BEST
        if rank != 0:
            return CanonicalResult({}, None, checkpoint, out, split.to_dict(), state.history, {}, timing, channels)
        # the config without paths of this machine: a checkpoint is evaluated and used elsewhere
        portable = cfg.model_dump(exclude={"tracks_cache", "output_dir", "data", "models_dir", "base_weights"})
        run_info = {
            "base_models": [r.portable() for r in tracks.records],
            "channels": channels,
            # the split and the genes' loci: a table beside the checkpoint (write_split_table), not JSON lists
            **write_split_table(checkpoint, split.to_dict(), tracks.places(), tracks.genome_build),
            "data": tracks.describe(),
            "config": portable,
        }
        # the best model is loaded once (finish_canonical_run) and passed on; config.json and metrics.json are
        # written once each
        result = finish_canonical_run(
            checkpoint,
            tracks.dirs,
            cfg.structure,
            cfg.hardware.device,
            state.history,
            timing,
            (val, test),
            progress=cfg.training.progress,
            run_info=run_info,
            variant_sets=variant_sets,
            models_dir=cfg.models_dir,
        )
        result.tracks_dirs, result.base_models = list(tracks.dirs), list(tracks.records)
        logger.info(result_line(result))  # the result in train.log too, not only on stdout
        result.split_rule = describe_split(split.to_dict(), tracks.chromosomes(), split_method(cfg, tracks))
        with Progress("report", bar=False, enabled=None):
            write_run_report(result, test=test)
        folder.finish(
            {
                "pr_auc_macro": result.canonical_test_metrics.get("pr_auc_macro"),
                "base_pr_auc_macro": (result.base_test_metrics or {}).get("pr_auc_macro"),
            }
        )
        return result
    except BaseException:
        if folder is not None:
            folder.__exit__(*sys.exc_info())
            folder = None
        raise
    finally:
        if folder is not None:
            folder.__exit__(None, None, None)


def result_line(result: CanonicalResult) -> str:
    """One line of a finished run's held-out result: PR-AUC macro of the base model, the network alone and the
    whole meta-layer, on the same positions."""
    meta, base = result.canonical_test_metrics, result.base_test_metrics or {}
    alone = (result.extra_test_metrics or {}).get("meta_per_nucleotide") or {}
    parts = [f"base {base['pr_auc_macro']:.4f}"] if "pr_auc_macro" in base else []
    if "pr_auc_macro" in alone:
        parts.append(f"network alone {alone['pr_auc_macro']:.4f}")
    parts.append(f"meta-layer {meta.get('pr_auc_macro', float('nan')):.4f}")
    return f"result on {len(result.split['test']):,} held-out test genes: PR-AUC macro " + ", ".join(parts)


FINISHING_PROBE_NT = 30_000  # validation nucleotides timed before training to estimate the run's last phase


def estimate_finishing_seconds(
    model,
    channels: Sequence[str],
    genes: tuple[Sequence[GeneArrays], Sequence[GeneArrays]],
    device: str | None = None,
    structure: bool = True,
    probe_nt: int = FINISHING_PROBE_NT,
) -> float:
    """Seconds :func:`finish_canonical_run` will take on these (validation, test) genes, from timing its own
    steps on the first ``probe_nt`` nt of validation genes with a copy of the (untrained: same cost) ``model``:
    the streamed pass over every validation and test gene, the decoder grid search over its sample of the
    validation genes, and one decoding per test nucleotide. Said at the start of a run, so that its estimate
    covers the whole run, not only the training."""
    import copy

    from meta_layer_cli.evaluation.evaluator import gene_probabilities
    from meta_layer_cli.evaluation.streaming import SiteScores, add_source
    from meta_layer_cli.training.structure import StructureSearch, grid_sample

    val, test = genes
    probe, total = [], 0
    for g in val if len(val) else test:
        if total >= probe_nt:
            break
        probe.append(g)
        total += len(g)
    if not total:
        return 0.0
    device = str(resolve_device(device))
    probe_model = copy.deepcopy(model).to(device)  # the run's model stays untouched, on its device
    search = StructureSearch() if structure else None
    started = time.perf_counter()
    scores: dict[str, dict[int, SiteScores]] = {}  # one histogram per source and class, as the finishing phase keeps
    for g, labels, sources in gene_probabilities(probe_model, channels, probe, device):
        for name, p in sources.items():
            add_source(scores, name, p, labels)
        if search is not None:
            search.add(sources["meta"], labels, g.codes)
    search_s = search.seconds if search is not None else 0.0
    pass_per_nt = (time.perf_counter() - started - search_s) / total
    search_per_nt = search_s / total
    decode_per_nt = search_per_nt / len(search.decoders) if search is not None else 0.0
    val_lengths = gene_lengths(val)
    val_nt, test_nt = int(val_lengths.sum()), int(gene_lengths(test).sum())
    fitted_nt = int(sum(val_lengths[i] for i in grid_sample(val_lengths))) if structure else 0
    return pass_per_nt * (val_nt + test_nt) + search_per_nt * fitted_nt + decode_per_nt * test_nt


def finish_canonical_run(
    checkpoint: str | os.PathLike,
    dirs: list[Path],
    structure: bool = True,
    device: str | None = None,
    history: list[dict] | None = None,
    timing: dict | None = None,
    genes: tuple[list[GeneArrays], list[GeneArrays]] | None = None,
    progress: bool = True,
    run_info: dict | None = None,
    variant_sets: list | None = None,
    models_dir: str | os.PathLike | None = None,
) -> CanonicalResult:
    """Fit the gene-structure decoder on the run's validation genes (``structure``; the grid search, and so the
    decoded output's thresholds, on at most :data:`~meta_layer_cli.training.structure.GRID_SAMPLE_NT` nt of them,
    the other thresholds on all), evaluate on its test genes, store decoder and thresholds in the checkpoint
    and write ``metrics.json`` beside ``checkpoints/``. ``run_canonical_training`` ends with it; it also
    upgrades a checkpoint trained without a decoder. ``dirs``: the run's tracks folders; ``genes``: its
    (validation, test) arrays if already loaded. Validation and test genes are streamed, one at a time.
    ``run_info``: the checkpoint's ``run`` section, written here with the thresholds (default: the one it
    holds). ``variant_sets``: measured variant tables to evaluate meta(alt) - meta(ref) on (``metrics.json``'s
    ``variants``).
    """
    from meta_layer_cli.evaluation.evaluator import choose_thresholds, evaluate_meta, gene_probabilities, total_nt
    from meta_layer_cli.evaluation.streaming import SiteScores, add_source
    from meta_layer_cli.models.checkpoint import load_model, update_checkpoint_config
    from meta_layer_cli.runtime.progress import Progress
    from meta_layer_cli.training.structure import StructureSearch, grid_sample

    device = str(resolve_device(device))

    checkpoint = Path(checkpoint)
    out = checkpoint.parent.parent
    best, config = load_model(checkpoint, device)
    if run_info is not None:
        config = {**config, "run": run_info}
    stored = CanonicalCheckpoint.read(checkpoint, config)
    run, channels, split = stored.run, stored.channels, stored.split
    if genes is None:
        genes = (
            load_gene_arrays(dirs, split["validation"], progress=progress)[1],
            load_gene_arrays(dirs, split["test"], progress=progress)[1],
        )
    val, test = genes
    timing = dict(timing or {})
    started = time.perf_counter()
    # one streamed pass over the validation genes fits the decoder (every grid point decodes each gene) and
    # collects what the F1-optimal thresholds of the meta model alone and of the base model are chosen from
    search = StructureSearch() if structure else None
    sample = grid_sample(gene_lengths(val)) if structure else set()
    scores: dict[str, dict[int, SiteScores]] = {}
    what = "decoder fit, thresholds" if structure else "thresholds"
    with Progress(
        f"train-canonical: validation genes ({what})", total=total_nt(val), unit="nt", enabled=progress
    ) as bar:
        for n, (g, labels, sources) in enumerate(gene_probabilities(best, channels, val, device), 1):
            if search is not None and n - 1 in sample:
                search.add(sources["meta"], labels, g.codes)
            for name, p in sources.items():
                name = "meta_per_nucleotide" if name == "meta" and search is not None else name
                add_source(scores, name, p, labels)
            bar.update(len(labels), genes=f"{n:,}/{len(val):,}")
    decoder = None
    if search is not None:
        decoder, score, decoded = search.best()
        scores["meta"] = decoded
        timing["structure_fit_s"] = round(search.seconds, 2)
        fitted_nt = sum(len(val[i]) for i in sample)
        logger.info(
            f"gene-structure decoder fitted on {len(sample):,} of {len(val):,} validation genes "
            f"({fitted_nt / 1e6:.1f} Mnt): macro PR-AUC {score:.4f} (+/- {search.error_bound:.1e}), scale "
            f"{decoder.scale_acceptor}, bias {decoder.bias_acceptor}, coding reward "
            f"{decoder.coding_reward}"
        )
    chosen = {name: {str(c): t for c, t in by_class.items()} for name, by_class in choose_thresholds(scores).items()}
    evaluation = evaluate_meta(
        best, channels, test, [], device, decoder, thresholds=chosen, progress=progress, phase="train-canonical"
    )
    timing["evaluation_s"] = round(time.perf_counter() - started, 2)
    thresholds = {k: {str(c): t for c, t in v.items()} for k, v in evaluation.thresholds.items()}
    entries = {"run": {**run, "thresholds": thresholds}}
    if decoder is not None:
        entries["structure"] = decoder.to_dict()
    update_checkpoint_config(checkpoint, entries, drop=("structure",))
    config = {**config, **entries}
    history = history if history is not None else _saved_history(checkpoint)
    variant_evaluation = None
    if variant_sets:
        from meta_layer_cli.evaluation.variant_effects import evaluate_canonical_on_variants

        variant_evaluation = evaluate_canonical_on_variants(
            checkpoint, variant_sets, device=device, models_dir=models_dir, loaded=(best, config), progress=progress
        )
    result = CanonicalResult(
        canonical_test_metrics=evaluation.meta,
        base_test_metrics=evaluation.base,
        checkpoint_path=checkpoint,
        output_dir=out,
        split=split,
        history=history,
        thresholds=thresholds,
        timing=timing,
        channels=channels,
        reliability=evaluation.reliability,
        pr_curves=evaluation.pr_curves,
        extra_test_metrics=evaluation.extra,
        variant_evaluation=variant_evaluation,
        loaded=(best, config),
    )
    write_json_atomic(
        out / "metrics.json",
        {
            "meta": evaluation.meta,
            "base": evaluation.base,
            **evaluation.extra,
            "structure": decoder.to_dict() if decoder is not None else None,
            "thresholds": thresholds,
            "timing": timing,
            "history": history,
            "split": split,
            "reliability": evaluation.reliability,
            "pr_curves": evaluation.pr_curves,
            "base_models": run["base_models"],
            **({"variants": variant_evaluation.to_dict()} if variant_evaluation is not None else {}),
        },
    )
    return result


def write_run_report(
    result: CanonicalResult,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    notes: list[str] | None = None,
    test: list[GeneArrays] | None = None,
) -> Path:
    """``report.html`` (default: beside ``checkpoints/``): metrics, PR curves, reliability diagram and one
    held-out gene's base and meta tracks. ``test``: the run's test genes if the caller holds them (else
    read from ``result.tracks_dirs``)."""
    from meta_layer_cli.evaluation.evaluator import base_probabilities
    from meta_layer_cli.evaluation.report import write_report
    from meta_layer_cli.models.apply import recalibrate_arrays
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.models.structure import structure_from_config

    model, config = result.loaded if result.loaded is not None else load_model(result.checkpoint_path, "cpu")
    if test is None:
        _, test = load_gene_arrays(result.tracks_dirs, result.split["test"])
    shown = max(test, key=lambda g: (int((g.labels > 0).sum()), -len(g)))
    on = next(model.parameters()).device  # the loaded model's device (finish_canonical_run's: maybe a GPU)
    meta = recalibrate_arrays(model, shown.codes, shown.tracks, device=on, structure=structure_from_config(config))
    planned = manifest_genes(read_manifest(result.tracks_dirs[0]) if result.tracks_dirs else {})
    names = dict(zip(planned.column("gene_id"), planned.column("gene_name")))
    gene = {
        "gene_id": shown.gene_id,
        "gene_name": names.get(shown.gene_id) or "",
        "labels": shown.labels,
        "meta": meta,
        "base": base_probabilities(shown.tracks, result.channels),
    }
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    metrics["meta"] = {**metrics["meta"], "n_genes": len(result.split["test"])}
    split = result.split
    notes = (notes or []) + [
        *(f"base model: {describe_weights(r)}" for r in result.base_models),
        f"{result.split_rule or 'split'}: {len(split['train'])} training, {len(split['validation'])} validation, "
        f"{len(split['test'])} held-out test genes",
    ]
    return write_report(
        path or result.output_dir / "report.html", metrics, title or "metalayer train-canonical", gene, notes
    )


def read_finished_run(out: str | os.PathLike) -> CanonicalResult:
    """The result of a finished run folder, read back from its ``metrics.json`` and checkpoint (what a rerun that
    finds nothing changed shows)."""
    from meta_layer_cli.training.trainer import BEST

    out = Path(out)
    metrics = json.loads((out / "metrics.json").read_text())
    checkpoint = out / "checkpoints" / BEST
    stored = CanonicalCheckpoint.read(checkpoint)
    run = stored.run
    extra = {k: metrics[k] for k in ("meta_per_nucleotide",) if metrics.get(k)}
    return CanonicalResult(
        canonical_test_metrics=metrics["meta"],
        base_test_metrics=metrics.get("base"),
        checkpoint_path=checkpoint,
        output_dir=out,
        split=metrics.get("split") or stored.split,
        history=metrics.get("history", []),
        thresholds=metrics.get("thresholds", {}),
        timing=metrics.get("timing", {}),
        channels=run["channels"],
        reliability=metrics.get("reliability", {}),
        pr_curves=metrics.get("pr_curves", {}),
        extra_test_metrics=extra,
        base_models=stored.base_records,
    )


def _saved_history(checkpoint: Path) -> list[dict]:
    state = checkpoint.parent / "last" / "trainer_state.json"
    return json.loads(state.read_text()).get("history", []) if state.is_file() else []


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


# ---------------------------------------------------------------------------------------------
# evaluation of a checkpoint
# ---------------------------------------------------------------------------------------------
def checkpoint_data(
    checkpoint: str | os.PathLike,
    data: list[str | os.PathLike] | str | os.PathLike | None,
    device: str,
    cache: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    needed: Sequence[str] | None = None,
) -> tuple[list[Path], bool]:
    """(tracks folders, whether they hold the genes the checkpoint was trained on) for evaluating a
    checkpoint: ``data`` (checked against its base models), or, for a demo-trained checkpoint, the
    demo tracks in the cache, predicted where missing for the ``needed`` genes only (default: all the run's;
    evaluating needs its test genes, not all 200)."""
    stored = CanonicalCheckpoint.read(checkpoint)
    records, trained_on = stored.base_records, stored.trained_on
    if data is None:
        if trained_on.get("dataset") != "demo":
            raise UsageError(f"{checkpoint} was trained on prepared data: give --data (the prepared folder(s))")
        ids = (
            list(needed)
            if needed is not None
            else stored.split["train"] + stored.split["validation"] + stored.split["test"]
        )
        dirs = [demo_tracks(r.load(device=device, models_dir=models_dir), ids, cache) for r in records]
        return dirs, True
    dirs = [Path(d) for d in ([data] if isinstance(data, (str, os.PathLike)) else data)]
    if len(dirs) != len(records):
        raise UsageError(f"{checkpoint} was trained on {len(records)} stacked base model(s); got {len(dirs)} --data")
    manifests = [read_manifest(d) for d in dirs]
    for record, manifest in zip(records, manifests):
        record.require(manifest_record(manifest), f"the checkpoint {checkpoint}")
    same = source_fingerprint(manifests[0]["fingerprint"]) == trained_on.get("source")
    return dirs, same


def seen_genes(stored: CanonicalCheckpoint, gene_ids: list[str], manifest: dict, same: bool, checkpoint) -> set[str]:
    """The ``gene_ids`` of a prepared folder that a checkpoint has seen (its training and validation genes):
    held out means held out by gene id *and* by genomic locus, whatever the annotation. On the data it was
    trained on, its split says; on other data, a gene is seen when its id is a training/validation id or its
    locus overlaps one of theirs on the same contig and strand (:attr:`CanonicalCheckpoint.seen_loci`)."""
    fitted = set(stored.split["train"]) | set(stored.split["validation"])
    seen = {g for g in gene_ids if g in fitted}
    if same:
        return seen
    if stored.seen_loci is None:
        logger.warning(
            f"{checkpoint} records no loci of its training genes (made by an older metalayer): genes of "
            "another annotation are held out by gene id only"
        )
        return seen
    rows = manifest_genes(manifest).select(LOCUS_KEYS, set(gene_ids))
    loci = {r["gene_id"]: gene_locus(r) for r in rows}
    return seen | (loci_seen_by(stored, loci, manifest["source"].get("genome_build")) or set())


def loci_seen_by(stored: CanonicalCheckpoint, loci: dict[str, Locus | None], build: str | None) -> set[str] | None:
    """The keys of ``loci`` that overlap a training or validation gene of a checkpoint on the same contig and
    strand (:attr:`CanonicalCheckpoint.seen_loci`, recorded at training), or None when its coordinates cannot
    say: no loci recorded, or another genome build than ``build``."""
    recorded = stored.seen_loci
    if recorded is None or not same_build(recorded[0], build):
        return None
    return overlapping_genes(recorded[1], loci)


@phase("evaluate")
def evaluate_checkpoint_on_variants(
    checkpoint: str | os.PathLike,
    table,
    device: str | None = None,
    models_dir: str | os.PathLike | None = None,
    allow_seen: bool = False,
):
    """A meta-layer checkpoint on measured variant effects (``metalayer evaluate --checkpoint C --variants T``):
    meta(alt) − meta(ref) at the assayed exon's sites, beside base(alt) − base(ref) on the same rows
    (:func:`~meta_layer_cli.evaluation.variant_effects.evaluate_canonical_on_variants`). ``table``: see
    :func:`~meta_layer_cli.jobs.variants.common.read_measured_table`. Rows whose exon lies in a gene the
    checkpoint trained or validated on (by locus, same genome build; ``run.loci``) are left out unless
    ``allow_seen``; how many, is logged. Returns a
    :class:`~meta_layer_cli.evaluation.variant_effects.VariantEffectEvaluation`."""
    import polars as pl

    from meta_layer_cli.evaluation.variant_effects import evaluate_canonical_on_variants
    from meta_layer_cli.jobs.variants.common import read_measured_table

    device = str(resolve_device(device))
    stored = CanonicalCheckpoint.read(checkpoint)
    frame = read_measured_table(table)
    placed = {"chrom", "strand", "exon_start_genomic", "exon_end_genomic"} <= set(frame.columns)
    seen = None
    if not allow_seen and placed:
        build = frame["genome_build"][0] if "genome_build" in frame.columns else None
        rows = frame.select("chrom", "strand", "exon_start_genomic", "exon_end_genomic").rows()
        loci = {str(i): (strip_chr(str(c)), str(st), int(a) - 1, int(b)) for i, (c, st, a, b) in enumerate(rows)}
        seen = loci_seen_by(stored, loci, build or "GRCh37")  # Vex-seq and MaPSy are hg19
    if seen is None and not allow_seen:
        logger.info("the rows' exons could not be placed against the checkpoint's training genes: all rows kept")
    elif seen:
        logger.info(
            f"{len(seen):,} of {len(frame):,} variant rows are in genes the checkpoint trained or validated on: "
            "left out (--allow-seen keeps them)"
        )
        frame = frame.filter(~pl.int_range(pl.len()).cast(pl.Utf8).is_in(sorted(seen)))
    if frame.is_empty():
        raise InputDataError("no variant rows left: every row is in a gene the checkpoint has seen (--allow-seen)")
    return evaluate_canonical_on_variants(checkpoint, [frame], device=device, models_dir=models_dir)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data: list[str | os.PathLike] | str | os.PathLike | None = None,
    genes: list[str] | None = None,
    device: str | None = None,
    allow_partial: bool = False,
    models_dir: str | os.PathLike | None = None,
) -> tuple[dict, dict | None]:
    """(meta metrics, base metrics) of :func:`evaluate_checkpoint_metrics`."""
    metrics = evaluate_checkpoint_metrics(checkpoint, data, genes, device, allow_partial, models_dir)
    return metrics["meta"], metrics["base"]


@phase("evaluate")
def evaluate_checkpoint_metrics(
    checkpoint: str | os.PathLike,
    data: list[str | os.PathLike] | str | os.PathLike | None = None,
    genes: list[str] | None = None,
    device: str | None = None,
    allow_partial: bool = False,
    models_dir: str | os.PathLike | None = None,
) -> dict:
    """``{"meta", "base"[, "meta_per_nucleotide"]}``: metrics of a canonical checkpoint on held-out genes, same
    positions; ``meta_per_nucleotide`` is the meta model alone (before its gene-structure decoder and any
    calibration), where the checkpoint has one.

    On the data it was trained on: its test genes (or ``genes``). On other data (another genome,
    annotation or gene set): every gene of it, all unseen. Thresholds are the checkpoint's own
    (chosen on its validation genes). A folder with planned genes still missing, or ``genes`` it
    lacks, is refused unless ``allow_partial``.
    """
    from meta_layer_cli.evaluation.evaluator import evaluate_meta
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.models.structure import structure_from_config

    device = str(resolve_device(device))  # once per job: --device, else the one default (auto)
    model, config = load_model(checkpoint, device)
    stored = CanonicalCheckpoint.read(checkpoint, config)
    run = stored.run
    # a demo checkpoint without --genes needs its test genes' tracks only
    needed = stored.split["test"] if genes is None else None
    dirs, same = checkpoint_data(checkpoint, data, device, models_dir=models_dir, needed=needed)
    manifests = [read_manifest(d) for d in dirs]
    in_order = common_gene_ids(dirs, manifests)
    finished = set(in_order)
    for d, manifest in zip(dirs, manifests):
        require_complete(d, manifest, allow_partial)
    if genes is not None:
        genes = resolve_gene_names(genes, manifests[0]["genes"])  # names or ids, as --genes takes them
        if not genes:
            raise UsageError("--genes names no gene")
        unknown = [g for g in genes if g not in finished]
        if unknown:
            raise InputDataError(f"gene(s) not in the data: {', '.join(unknown[:10])}")
        seen_ones = seen_genes(stored, genes, manifests[0], same, checkpoint)
        seen = [g for g in genes if g in seen_ones]
        if seen:
            logger.warning(
                f"{len(seen)} of the --genes were used in training or validation, or overlap such a "
                f"gene (e.g. {seen[0]}): their metrics are not held-out metrics"
            )
        test_ids = genes
    elif same:
        test_ids = [g for g in stored.split["test"] if g in finished]
        if len(test_ids) < len(stored.split["test"]) and not allow_partial:
            raise InputDataError(
                f"{len(stored.split['test']) - len(test_ids)} of the checkpoint's test genes have "
                "no tracks in the data; pass --allow-partial to evaluate the rest"
            )
    else:
        seen = seen_genes(stored, in_order, manifests[0], same, checkpoint)
        test_ids = [g for g in in_order if g not in seen]
        if seen:
            logger.info(
                f"{len(seen)} of the {len(in_order)} genes of the data are the checkpoint's training or "
                "validation genes, or overlap one on the same strand (another annotation of the genome): "
                f"left out, {len(test_ids)} held-out genes evaluated"
            )
            if not test_ids:
                raise InputDataError(
                    "every gene of the data is a training or validation gene of the checkpoint "
                    "(by gene id or genomic locus): nothing held out to evaluate"
                )
    if not test_ids:
        raise InputDataError("no genes to evaluate")
    channels, test = load_gene_arrays(dirs, test_ids, manifests)
    # the genes streamed below are all this step needs of the folders and the split: every gene's manifest row,
    # id lists and split lists (~0.5 kB a gene) go now, not after the longest phase
    del manifests, in_order, finished, stored
    if channels != model.config.channels:
        raise InputDataError(f"tracks have channels {channels}, the checkpoint expects {model.config.channels}")
    thresholds = run.get("thresholds")
    if thresholds is None:
        raise InputDataError(f"{checkpoint} has no thresholds (an unfinished run?)")
    from meta_layer_cli.models.site_calibration import calibration_from_config

    evaluation = evaluate_meta(
        model,
        channels,
        test,
        [],
        device,
        structure_from_config(config),
        thresholds=thresholds,
        calibration=calibration_from_config(config),
    )
    meta = {**evaluation.meta, "n_genes": len(test_ids)}
    return {"meta": meta, "base": evaluation.base, **evaluation.extra}
