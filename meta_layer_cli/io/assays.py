"""Measured variant effects on splicing as one table type (a polars DataFrame).

Every loader returns these columns first, in this order:

================  =======  ====================================================================
column            dtype    meaning
================  =======  ====================================================================
``id``            Utf8     unique row id
``ref_seq``       Utf8     reference sequence, transcript orientation (5'->3'), uppercase
``alt_seq``       Utf8     the same with the variant applied (may differ in length: indels)
``exon_start``    Int64    0-based start of the assayed exon in ``ref_seq`` (its first nt); null if unknown
``exon_end``      Int64    0-based exclusive end of that exon in ``ref_seq``; null if unknown
``target``        Float64  the measured effect (see ``target_kind``); null where not measured
``target_kind``   Utf8     ``delta_psi_percent`` | ``log2_ratio`` | ``splice_altering`` (1/0)
``group``         Utf8     exon id: rows sharing it must stay on one side of a train/test split
``source``        Utf8     ``vexseq`` | ``mapsy`` | ``wt1_saturation`` | ``splicevardb``
``upstream``      Utf8     real sequence just 5' of ``ref_seq``/``alt_seq`` (model context); "" if none
``downstream``    Utf8     real sequence just 3' of them; "" if none
================  =======  ====================================================================

followed by source-specific columns (documented per loader). The first seven
columns plus ``upstream``/``downstream`` are what
:func:`meta_layer_cli.artifacts.sequences.score_sequences` reads.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.io.resources import package_file
from meta_layer_cli.io.sequence import reverse_complement
from meta_layer_cli.runtime.errors import InputDataError, UsageError

logger = logging.getLogger(__name__)

BASE_COLUMNS = (
    "id",
    "ref_seq",
    "alt_seq",
    "exon_start",
    "exon_end",
    "target",
    "target_kind",
    "group",
    "source",
    "upstream",
    "downstream",
)
_BASE_TYPES = {
    "id": pl.Utf8,
    "ref_seq": pl.Utf8,
    "alt_seq": pl.Utf8,
    "exon_start": pl.Int64,
    "exon_end": pl.Int64,
    "target": pl.Float64,
    "target_kind": pl.Utf8,
    "group": pl.Utf8,
    "source": pl.Utf8,
    "upstream": pl.Utf8,
    "downstream": pl.Utf8,
}

VEXSEQ_UPSTREAM = 100  # Vex-seq sequences hold 100 nt of intron before the exon


def _finish(columns: dict[str, list], extra_types: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    types = {**_BASE_TYPES, **(extra_types or {})}
    frame = pl.DataFrame({name: pl.Series(name, values, dtype=types.get(name)) for name, values in columns.items()})
    frame = frame.select(list(BASE_COLUMNS) + [c for c in frame.columns if c not in BASE_COLUMNS])
    if frame["id"].n_unique() != frame.height:
        raise InputDataError("row ids are not unique")
    return frame


def _read_csv(path: str | os.PathLike, what: str) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    return pl.read_csv(path, infer_schema_length=None, null_values=["", "NA", "nan", "NaN"])


def _require(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(f"{what}: missing column(s) {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------
def load_vexseq(path: str | os.PathLike) -> pl.DataFrame:
    """Vex-seq (Adamson et al. 2018; CAGI5 HepG2 set): delta PSI of variants near 52 exons.

    ``REF_SEQ``/``ALT_SEQ`` are in transcript orientation: 100 nt of upstream
    intron, the exon (``width`` nt), then downstream intron of whatever length the
    file has (not assumed). So ``exon_start = 100`` and ``exon_end = 100 + width``.
    ``target`` = HepG2 delta PSI in percent. ``group`` = the exon
    (``chrom:start-end:strand``, hg19).

    Extra columns: ``chrom``, ``strand``, ``exon_start_genomic``, ``exon_end_genomic``
    (hg19, 1-based inclusive, as in the file), ``variant_position`` (hg19),
    ``ref_allele``, ``alt_allele``, ``ref_psi``, ``side``, ``downstream_flank``
    (nt of intron after the exon in ``ref_seq``).
    """
    raw = _read_csv(path, "Vex-seq")
    need = [
        "ID",
        "seqnames",
        "start",
        "end",
        "width",
        "strand",
        "hg19_variant_position",
        "reference",
        "variant",
        "HepG2_delta_psi",
        "REF_SEQ",
        "ALT_SEQ",
    ]
    _require(raw, need, "Vex-seq")
    rows = raw.to_dicts()
    cols: dict[str, list] = {c: [] for c in BASE_COLUMNS}
    extra = {
        c: []
        for c in (
            "chrom",
            "strand",
            "exon_start_genomic",
            "exon_end_genomic",
            "variant_position",
            "ref_allele",
            "alt_allele",
            "ref_psi",
            "side",
            "downstream_flank",
        )
    }
    for i, r in enumerate(rows):
        ref, alt, width = str(r["REF_SEQ"]).upper(), str(r["ALT_SEQ"]).upper(), int(r["width"])
        exon_end = VEXSEQ_UPSTREAM + width
        if len(ref) < exon_end:
            raise InputDataError(f"Vex-seq row {i} ({r['ID']}): REF_SEQ ({len(ref)} nt) shorter than 100 + width")
        group = f"{r['seqnames']}:{r['start']}-{r['end']}:{r['strand']}"
        for key, value in (
            ("id", str(r["ID"])),
            ("ref_seq", ref),
            ("alt_seq", alt),
            ("exon_start", VEXSEQ_UPSTREAM),
            ("exon_end", exon_end),
            ("target", r["HepG2_delta_psi"]),
            ("target_kind", "delta_psi_percent"),
            ("group", group),
            ("source", "vexseq"),
            ("upstream", ""),
            ("downstream", ""),
        ):
            cols[key].append(value)
        extra["chrom"].append(r["seqnames"])
        extra["strand"].append(r["strand"])
        extra["exon_start_genomic"].append(int(r["start"]))
        extra["exon_end_genomic"].append(int(r["end"]))
        extra["variant_position"].append(int(r["hg19_variant_position"]))
        extra["ref_allele"].append(r["reference"])
        extra["alt_allele"].append(r["variant"])
        extra["ref_psi"].append(r.get("HepG2_ref_psi"))
        extra["side"].append(r.get("side"))
        extra["downstream_flank"].append(len(ref) - exon_end)
    return _finish(
        {**cols, **extra},
        {
            "exon_start_genomic": pl.Int64,
            "exon_end_genomic": pl.Int64,
            "variant_position": pl.Int64,
            "ref_psi": pl.Float64,
            "downstream_flank": pl.Int64,
        },
    )


# ---------------------------------------------------------------------------------------------
_MAPSY_FLANK = 15  # the file's `acceptor` / `donor` fields: 15 nt ending at / starting after the exon


def _mapsy_exon(wt: str, acceptor: str, donor: str, length: int) -> tuple[int, int] | None:
    """Exon ``[start, end)`` in a MaPSy wild-type sequence, from its splice-site 15-mers and length."""
    for end in (wt.find(donor), wt.rfind(donor)):
        start = end - length
        if end >= 0 and start >= _MAPSY_FLANK and wt[start - _MAPSY_FLANK : start] == acceptor:
            return start, end
    start = wt.find(acceptor)
    if start >= 0:
        start += _MAPSY_FLANK
        if wt[start + length : start + length + _MAPSY_FLANK] == donor:
            return start, start + length
    return None


def load_mapsy(path: str | os.PathLike) -> pl.DataFrame:
    """MaPSy (Soemedi et al. 2017): 200-nt wild-type / mutant minigene inserts and splicing efficiency.

    Layout, as found in the file: ``WT_SEQ``/``MUT_SEQ`` are 200 nt in transcript
    orientation (the acceptor 15-mer precedes the donor 15-mer on both strands),
    starting and ending with the library's constant primer sequence; ``acceptor``
    is the 15 nt ending at the exon's first nt (…AG), ``donor`` the 15 nt starting
    right after its last nt (GT…); ``Exon_Start``/``Exon_End`` are 1-based
    inclusive genomic coordinates, so the exon is ``Exon_End - Exon_Start + 1`` nt.
    The exon is located from these fields and checked against all of them; a row
    where they disagree raises ``ValueError``.

    ``target`` = ``log2_vivo_ratio`` (log2 of mutant / wild-type splicing
    efficiency in vivo; null where not measured or infinite: the file has ``Inf``/``-Inf``
    where a count is zero, kept as such in ``log2_vivo_ratio``). ``group`` = the exon
    (``chr:Exon_Start-Exon_End``).

    Extra columns: ``wt_id``, ``mut_id``, ``chrom``, ``strand``,
    ``exon_start_genomic``, ``exon_end_genomic``, ``log2_vivo_ratio``,
    ``log2_vitro_ratio``, the eight read counts (``vivo_wt_spliced`` …
    ``vitro_mut_input``), ``esm`` and ``test`` (the published split flag).
    """
    raw = _read_csv(path, "MaPSy")
    need = [
        "ID",
        "WT_ID",
        "MUT_ID",
        "WT_SEQ",
        "MUT_SEQ",
        "Exon_Start",
        "Exon_End",
        "chr",
        "strand",
        "donor",
        "acceptor",
        "log2_vivo_ratio",
        "log2_vitro_ratio",
    ]
    _require(raw, need, "MaPSy")
    counts = [f"{a}_{b}_{c}" for a in ("Vivo", "Vitro") for b in ("WT", "MUT") for c in ("Spliced", "Input")]
    cols: dict[str, list] = {c: [] for c in BASE_COLUMNS}
    extra_names = [
        "wt_id",
        "mut_id",
        "chrom",
        "strand",
        "exon_start_genomic",
        "exon_end_genomic",
        "log2_vivo_ratio",
        "log2_vitro_ratio",
        *[c.lower() for c in counts],
        "esm",
        "test",
    ]
    extra: dict[str, list] = {c: [] for c in extra_names}
    for i, r in enumerate(raw.to_dicts()):
        wt, mut = str(r["WT_SEQ"]).upper(), str(r["MUT_SEQ"]).upper()
        length = int(r["Exon_End"]) - int(r["Exon_Start"]) + 1
        exon = _mapsy_exon(wt, str(r["acceptor"]).upper(), str(r["donor"]).upper(), length)
        if exon is None:
            raise InputDataError(f"MaPSy row {i} ({r['ID']}): exon not found from its acceptor/donor fields and length")
        group = f"{r['chr']}:{r['Exon_Start']}-{r['Exon_End']}"
        vivo, vitro = _float(r["log2_vivo_ratio"]), _float(r["log2_vitro_ratio"])
        target = vivo if vivo is not None and math.isfinite(vivo) else None
        for key, value in (
            ("id", str(r["ID"])),
            ("ref_seq", wt),
            ("alt_seq", mut),
            ("exon_start", exon[0]),
            ("exon_end", exon[1]),
            ("target", target),
            ("target_kind", "log2_ratio"),
            ("group", group),
            ("source", "mapsy"),
            ("upstream", ""),
            ("downstream", ""),
        ):
            cols[key].append(value)
        test = r.get("test")
        values = [
            r["WT_ID"],
            r["MUT_ID"],
            r["chr"],
            r["strand"],
            int(r["Exon_Start"]),
            int(r["Exon_End"]),
            vivo,
            vitro,
            *[r.get(c) for c in counts],
            r.get("ESM"),
            None if test is None else str(test).upper() == "TRUE",
        ]
        for name, value in zip(extra_names, values):
            extra[name].append(value)
    types = {
        "exon_start_genomic": pl.Int64,
        "exon_end_genomic": pl.Int64,
        "log2_vivo_ratio": pl.Float64,
        "log2_vitro_ratio": pl.Float64,
        "esm": pl.Int64,
        "test": pl.Boolean,
        **{c.lower(): pl.Int64 for c in counts},
    }
    return _finish({**cols, **extra}, types)


# ---------------------------------------------------------------------------------------------
_FAC = "frame-alignment-checks"
_WT1_TABLE = "frame_alignment_checks/data/saturation_mutagenesis_Supplemental_Table_S2.xlsx"
_WT1_MINIGENE = "frame_alignment_checks/data/minigene_WT1_5.pkl"
WT1_PAD_LEFT, WT1_PAD_RIGHT, WT1_EXON_LENGTH = 23, 16, 51  # the table's 90-nt sequences: -23 .. exon .. +16


def load_wt1_minigene() -> dict:
    """The WT1 exon 5 minigene of ``frame-alignment-checks``: sequence and exon 5 bounds.

    Returns ``sequence`` (str, 17,706 nt, transcript orientation), ``labels``
    (int8 ``[L]``, 0/1/2 neither/acceptor/donor), ``exon_start`` (0-based first
    nt) and ``exon_end`` (0-based exclusive). Read from the package's ``.pkl``
    with :func:`meta_layer_cli.io.archives.read_numpy_pickle`, which interprets the
    file's opcodes for numpy arrays only and unpickles nothing.
    """
    from meta_layer_cli.io.archives import read_numpy_pickle

    raw = read_numpy_pickle(package_file(_FAC, _WT1_MINIGENE, "the WT1 assay data"))
    x, y = np.asarray(raw["x"]), np.asarray(raw["y"])
    if x.ndim != 2 or x.shape[1] != 4 or y.shape != (x.shape[0], 3):
        raise InputDataError(f"unexpected WT1 minigene arrays: x {x.shape}, y {y.shape}")
    seq = np.frombuffer(b"ACGTN", np.uint8)[np.where(x.sum(1) > 0, x.argmax(1), 4)].tobytes().decode()
    start, last = int(raw["main_exon_start"]), int(raw["main_exon_end"])  # last is inclusive
    if last - start + 1 != WT1_EXON_LENGTH:
        raise InputDataError(f"WT1 minigene exon 5 is {last - start + 1} nt, expected {WT1_EXON_LENGTH}")
    labels = np.where(y.sum(1) > 0, y.argmax(1), 0).astype(np.int8)
    return {"sequence": seq, "labels": labels, "exon_start": start, "exon_end": last + 1}


def _float(value) -> float | None:
    """A number from a cell ("Inf" allowed); None for empty or non-numeric text."""
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def load_saturation_mutagenesis(context: int = 5000) -> pl.DataFrame:
    """WT1 exon 5 saturation mutagenesis (Ke et al. 2018, Table S2): 5,560 variants with exon inclusion.

    The table gives, per variant, the 90 nt from 23 nt before to 16 nt after the
    51-nt exon. The library is ten hexamer-mutation groups (``Hex-mut`` A..J), each
    with its own parent (``Posn`` 0, "the relative WT"); ``ref_seq`` is the
    row's group parent, ``alt_seq`` the row's sequence, the exon is ``[23, 74)``.
    ``upstream``/``downstream`` hold up to ``context`` nt of the minigene the
    library was assayed in (the flanking WT1 exons and introns; the minigene's
    own copy of the 90 nt is replaced by the table's), so a model sees the real
    construct. ``target`` = log2(EI / EI of the group parent) (null if either EI
    is not positive), ``target_kind`` = ``log2_ratio``; ``group`` = ``WT1_exon5``.

    Extra columns: ``table_id``, ``hexmut_group``, ``hexmut_position``, ``ei``,
    ``rel_ei``, ``lei``, ``ei_ref``, ``base_change``, ``mutation_class`` (SBS/DBS).
    """
    rows = _read_wt1_rows()
    minigene = load_wt1_minigene()
    mg, ex0 = minigene["sequence"], minigene["exon_start"]
    lo, hi = ex0 - WT1_PAD_LEFT, minigene["exon_end"] + WT1_PAD_RIGHT
    upstream, downstream = mg[max(0, lo - context) : lo], mg[hi : hi + context]
    parents = {r["hexmut"]: r for r in rows if r["position"] == 0}
    cols: dict[str, list] = {c: [] for c in BASE_COLUMNS}
    names = [
        "table_id",
        "hexmut_group",
        "hexmut_position",
        "ei",
        "rel_ei",
        "lei",
        "ei_ref",
        "base_change",
        "mutation_class",
    ]
    extra: dict[str, list] = {c: [] for c in names}
    for r in rows:
        parent = parents.get(r["hexmut"])
        if parent is None:
            raise InputDataError(f"WT1 table: hexmut group {r['hexmut']} has no parent (Posn 0) row")
        ei, ei_ref = r["ei"], parent["ei"]
        target = math.log2(ei / ei_ref) if ei is not None and ei_ref and ei > 0 and ei_ref > 0 else None
        for key, value in (
            ("id", f"WT1_ex5_{r['table_id']}"),
            ("ref_seq", parent["sequence"]),
            ("alt_seq", r["sequence"]),
            ("exon_start", WT1_PAD_LEFT),
            ("exon_end", WT1_PAD_LEFT + WT1_EXON_LENGTH),
            ("target", target),
            ("target_kind", "log2_ratio"),
            ("group", "WT1_exon5"),
            ("source", "wt1_saturation"),
            ("upstream", upstream),
            ("downstream", downstream),
        ):
            cols[key].append(value)
        values = [
            r["table_id"],
            r["hexmut"],
            r["position"],
            ei,
            r["rel_ei"],
            r["lei"],
            ei_ref,
            r["base_change"],
            r["mutation_class"],
        ]
        for name, value in zip(names, values):
            extra[name].append(value)
    types = {
        "table_id": pl.Int64,
        "hexmut_position": pl.Int64,
        "ei": pl.Float64,
        "rel_ei": pl.Float64,
        "lei": pl.Float64,
        "ei_ref": pl.Float64,
    }
    return _finish({**cols, **extra}, types)


def _read_wt1_rows() -> list[dict]:
    from meta_layer_cli.io.archives import read_xlsx_rows

    table = read_xlsx_rows(package_file(_FAC, _WT1_TABLE, "the WT1 assay data"))
    header = table[0]
    if len(header) < 14 or header[1] != "Hex-mut #" or not str(header[3]).startswith("Sequence (90 nt)"):
        raise InputDataError(f"unexpected WT1 saturation mutagenesis table header: {header[:5]}")
    rows = []
    for cells in table[1:]:
        cells = cells + [None] * (14 - len(cells))
        if not cells[0]:
            continue  # blank spacer rows
        seq = (cells[3] or "").upper()
        if len(seq) != WT1_PAD_LEFT + WT1_EXON_LENGTH + WT1_PAD_RIGHT:
            raise InputDataError(f"WT1 table row {cells[0]}: sequence is {len(seq)} nt, expected 90")
        rows.append(
            {
                "table_id": int(float(cells[0])),
                "hexmut": cells[1],
                "position": int(float(cells[2])),
                "sequence": seq,
                "ei": _float(cells[4]),
                "rel_ei": _float(cells[5]),
                "lei": _float(cells[7]),
                "base_change": cells[12] or None,
                "mutation_class": cells[13] or None,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
_SPLICEVARDB_CLASSES = {"Splice-altering": 1.0, "Normal": 0.0, "Low-frequency": None, "Conflicting": None}


def load_splicevardb(
    path: str | os.PathLike,
    fasta: str | os.PathLike,
    build: str = "hg38",
    annotation: str | os.PathLike | None = None,
    flank: int = 150,
    context: int = 5000,
) -> pl.DataFrame:
    """A SpliceVarDB export (TSV: ``variant_id, hg19, hg38, gene, hgvs, method, classification, location``).

    Variants (``chr-pos-ref-alt``, 1-based, in the ``build`` column) are cut from
    the user's ``fasta`` with ``flank`` nt each side, read on the strand of the
    annotated gene named in ``gene`` (``annotation``: grch37/grch38 by default,
    matching ``build``, or a table/GTF). If the gene's nearest exon lies within
    ``flank`` nt of the variant the window is widened to hold the whole exon and
    ``exon_start``/``exon_end`` point at it, else they are null. ``upstream`` /
    ``downstream`` hold ``context`` nt of real genomic context. ``target`` = 1 for
    Splice-altering, 0 for Normal, null for Low-frequency / Conflicting
    (``target_kind`` = ``splice_altering``); ``group`` = ``gene:exon`` (or the gene).

    Extra columns: ``variant_id``, ``chrom``, ``pos``, ``ref``, ``alt``, ``gene``,
    ``hgvs``, ``method``, ``classification``, ``location``, ``strand``,
    ``ref_matches`` (REF equals the FASTA; rows where it does not are kept, with a
    warning).
    """
    from meta_layer_cli.io.annotation import read_gene_annotation
    from meta_layer_cli.io.fasta import Fasta

    if build not in ("hg19", "hg38"):
        raise UsageError(f"build must be hg19 or hg38, got {build!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SpliceVarDB file not found: {path}")
    raw = pl.read_csv(path, separator="\t", infer_schema_length=None, null_values=["", "NA"])
    _require(raw, ["variant_id", build, "gene", "classification"], "SpliceVarDB")
    genome = Fasta(fasta)
    transcripts = read_gene_annotation(annotation or {"hg19": "grch37", "hg38": "grch38"}[build])
    by_name: dict[str, list] = {}
    for t in transcripts:
        by_name.setdefault(t.gene_name, []).append(t)
    cols: dict[str, list] = {c: [] for c in BASE_COLUMNS}
    names = [
        "variant_id",
        "chrom",
        "pos",
        "ref",
        "alt",
        "gene",
        "hgvs",
        "method",
        "classification",
        "location",
        "strand",
        "ref_matches",
    ]
    extra: dict[str, list] = {c: [] for c in names}
    mismatches = 0
    for i, r in enumerate(raw.to_dicts()):
        spec = str(r[build])
        parts = spec.rsplit("-", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            raise InputDataError(f"SpliceVarDB row {i}: {build} value {spec!r} is not chr-pos-ref-alt")
        chrom, pos, ref, alt = parts[0], int(parts[1]), parts[2].upper(), parts[3].upper()
        v0, v1 = pos - 1, pos - 1 + len(ref)
        candidates = [t for t in by_name.get(str(r["gene"]), []) if genome.contigs.resolve(t.chrom) is not None]
        candidates = [t for t in candidates if _same_chrom(t.chrom, chrom)]
        transcript = min(candidates, key=lambda t: _distance(t.start, t.end, v0, v1)) if candidates else None
        strand = transcript.strand if transcript else "+"
        w0, w1 = v0 - flank, v1 + flank
        exon = None
        if transcript is not None:
            nearest = min(transcript.exons, key=lambda e: _distance(e[0], e[1], v0, v1))
            if _distance(nearest[0], nearest[1], v0, v1) <= flank:
                exon = nearest
                w0, w1 = min(w0, exon[0]), max(w1, exon[1])
        window = genome.fetch(chrom, w0, w1)
        matches = window[v0 - w0 : v1 - w0] == ref
        mismatches += not matches
        alt_window = window[: v0 - w0] + alt + window[v1 - w0 :]
        up, down = genome.fetch(chrom, w0 - context, w0), genome.fetch(chrom, w1, w1 + context)
        if strand == "-":
            window, alt_window = reverse_complement(window), reverse_complement(alt_window)
            up, down = reverse_complement(down), reverse_complement(up)
            exon_bounds = (w1 - exon[1], w1 - exon[0]) if exon else (None, None)
        else:
            exon_bounds = (exon[0] - w0, exon[1] - w0) if exon else (None, None)
        gene = str(r["gene"])
        group = f"{gene}:{chrom}:{exon[0]}-{exon[1]}" if exon else gene
        cls = r["classification"]
        for key, value in (
            ("id", f"{r['variant_id']}"),
            ("ref_seq", window),
            ("alt_seq", alt_window),
            ("exon_start", exon_bounds[0]),
            ("exon_end", exon_bounds[1]),
            ("target", _SPLICEVARDB_CLASSES.get(cls)),
            ("target_kind", "splice_altering"),
            ("group", group),
            ("source", "splicevardb"),
            ("upstream", up),
            ("downstream", down),
        ):
            cols[key].append(value)
        values = [
            r["variant_id"],
            chrom,
            pos,
            ref,
            alt,
            gene,
            r.get("hgvs"),
            r.get("method"),
            cls,
            r.get("location"),
            strand,
            matches,
        ]
        for name, value in zip(names, values):
            extra[name].append(value)
    genome.close()
    if mismatches:
        logger.warning(f"SpliceVarDB: {mismatches} variant(s) whose REF differs from {fasta} (see ref_matches)")
    types = {"variant_id": pl.Utf8, "pos": pl.Int64, "ref_matches": pl.Boolean}
    return _finish({**cols, **extra}, types)


def _distance(start: int, end: int, v0: int, v1: int) -> int:
    """Gap in nt between intervals [start, end) and [v0, v1) (0 if they overlap)."""
    return max(0, start - v1, v0 - end)


def _same_chrom(a: str, b: str) -> bool:
    from meta_layer_cli.io.contigs import strip_chr

    return strip_chr(a) == strip_chr(b)


ASSAY_LOADERS = ("vexseq", "mapsy", "wt1_saturation", "splicevardb", "table")


def load_assay(loader: str, path: str | os.PathLike | None = None, **options) -> pl.DataFrame:
    """A measured variant table by loader name (:data:`ASSAY_LOADERS`): ``vexseq``, ``mapsy`` and
    ``table`` (a CSV/TSV/parquet with the loaders' columns) need ``path``; ``wt1_saturation`` is built
    in; ``splicevardb`` needs ``path`` and ``fasta=`` (``build=``, ``annotation=``)."""
    if loader not in ASSAY_LOADERS:
        raise UsageError(f"unknown loader {loader!r} (choose from {', '.join(ASSAY_LOADERS)})")
    if loader == "wt1_saturation":
        return load_saturation_mutagenesis()
    if path is None:
        raise UsageError(f"loader {loader} needs a path")
    path = os.path.expandvars(os.path.expanduser(str(path)))
    if loader == "vexseq":
        return load_vexseq(path)
    if loader == "mapsy":
        return load_mapsy(path)
    if loader == "splicevardb":
        return load_splicevardb(path, **options)
    from meta_layer_cli.io.tables import read_table

    return read_table(path)
