"""A self-contained ``report.html``: provenance, metrics table, timing, training curve, PR curves, reliability
diagram with counts, one held-out gene's tracks."""

from __future__ import annotations

import base64
import html
import io
import os
import time
from pathlib import Path

import numpy as np

from meta_layer_cli import __version__
from meta_layer_cli.io.atomic import atomic_path
from meta_layer_cli.runtime.progress import format_duration
from meta_layer_cli.runtime.provenance import current_command_line

ROWS = (
    "pr_auc_acceptor",
    "pr_auc_donor",
    "pr_auc_macro",
    "topk_acceptor",
    "topk_donor",
    "topk_mean",
    "fp_at_0.5",
    "fn_at_0.5",
    "fp_at_f1opt",
    "fn_at_f1opt",
    "ece",
)


def format_metric(key: str, value) -> str:
    """One metric as tables show it (terminal and report): ECE (~1e-4 per nucleotide) with its exponent,
    where four decimals would print 0.0000; other floats to four decimals; counts as they are."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2e}" if key == "ece" else f"{value:.4f}"
    return str(value)


#: the meta model before the gene-structure decoder (and any calibration): what the network alone achieves
NETWORK_ALONE = "meta_per_nucleotide"
ECE_SENTENCE = (
    "ECE (expected calibration error) is the average gap between a predicted site probability and how often a "
    "site is really there, over bins of predicted probability weighted by how many positions fall in each "
    "(acceptor and donor averaged; 0 is perfect). Nearly every position is far from any site and predicted near "
    "0, so the values are small (about 1e-4): compare base with meta, and read the reliability curve."
)
TIMING_LABELS = {
    "base_tracks_s": "base-model tracks (predicted or read)",
    "training_s": "training",
    "structure_fit_s": "gene-structure decoder fit",
    "evaluation_s": "evaluation on held-out genes",
}


def worse_than_base(meta: dict, base: dict | None, n_genes: int | None = None) -> str | None:
    """A warning when the meta-layer is worse than its base model on the held-out genes (PR-AUC macro or mean
    top-k), else None: then the base model's own scores are the better choice for these genes."""
    if not base:
        return None
    worse = [
        f"{label} {meta[key]:.4f} vs base {base[key]:.4f}"
        for key, label in (("pr_auc_macro", "PR-AUC macro"), ("topk_mean", "mean top-k"))
        if meta.get(key) is not None and base.get(key) is not None and meta[key] < base[key]
    ]
    if not worse:
        return None
    genes = f" on the {n_genes} held-out genes" if n_genes else " on the held-out genes"
    return (
        f"the meta-layer is WORSE than its base model{genes} ({'; '.join(worse)}): use the base model's "
        "scores, or train on more genes or for longer"
    )


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _training_curve(history: list[dict]):
    """Loss and validation PR-AUC per epoch, with the base model's validation PR-AUC for reference."""
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, auc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_ax.plot(epochs, [h.get("train_loss", np.nan) for h in history], "o-")
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    auc_ax.plot(epochs, [h.get("val_pr_auc_macro", np.nan) for h in history], "o-", label="meta-layer")
    base = [h["val_base_pr_auc_macro"] for h in history if h.get("val_base_pr_auc_macro") is not None]
    if base:
        auc_ax.axhline(base[-1], color="grey", ls="--", label=f"base model ({base[-1]:.4f})")
    auc_ax.set(title="validation PR-AUC (macro)", xlabel="epoch", ylabel="PR-AUC")
    auc_ax.legend(loc="lower right")
    for ax in (loss_ax, auc_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _reliability_with_counts(reliability: dict, metrics: dict):
    """Observed site frequency against predicted probability per bin, and below it how many positions each
    bin holds (log scale): the bins that decide the ECE are the crowded ones near 0."""
    import matplotlib.pyplot as plt

    fig, (ax, counts_ax) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    for (name, marker), offset in zip((("base", "s"), ("meta", "o")), (-0.012, 0.012)):
        curve = reliability.get(name)
        if not curve:
            continue
        count = np.asarray(curve["count"])
        keep = count > 0
        ece = (metrics.get(name) or {}).get("ece", float("nan"))
        ax.plot(
            np.asarray(curve["mean_predicted"])[keep],
            np.asarray(curve["observed"])[keep],
            marker=marker,
            label=f"{name} (ECE {ece:.2e})",
        )
        width = 1 / len(count)
        centres = (np.arange(len(count)) + 0.5) * width
        counts_ax.bar(centres + offset, np.where(keep, count, np.nan), width=0.022, label=name)
    ax.set(title="reliability (acceptor + donor)", ylabel="observed site frequency", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left")
    counts_ax.set(yscale="log", xlabel="predicted probability", ylabel="positions")
    return fig


def _figures(metrics: dict, gene: dict | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    history = [h for h in metrics.get("history") or [] if "epoch" in h]
    if history:
        fig = _training_curve(history)
        out.append(("Training curve", _png(fig)))
        plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, kind in zip(axes, ("acceptor", "donor")):
        for name, style in (("base", "--"), ("meta", "-")):
            curve = metrics.get("pr_curves", {}).get(name, {}).get(kind)
            if curve:
                auc = (metrics.get(name) or {}).get(f"pr_auc_{kind}", float("nan"))
                ax.plot(curve["recall"], curve["precision"], style, label=f"{name} (PR-AUC {auc:.3f})")
        ax.set(title=f"{kind} sites, held-out genes", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="lower left")
    out.append(("Precision-recall curves", _png(fig)))
    plt.close(fig)

    fig = _reliability_with_counts(metrics.get("reliability", {}), metrics)
    out.append(("Reliability diagram", _png(fig)))
    plt.close(fig)

    if gene is not None:
        fig, axes = plt.subplots(2, 1, figsize=(11, 4.5), sharex=True)
        x = np.arange(len(gene["labels"]))
        for ax, cls, kind in ((axes[0], 1, "acceptor"), (axes[1], 2, "donor")):
            ax.plot(x, gene["base"][:, cls], lw=0.7, label="base")
            ax.plot(x, gene["meta"][:, cls], lw=0.7, label="meta")
            sites = np.flatnonzero(gene["labels"] == cls)
            ax.plot(sites, np.full(len(sites), 1.05), "v", color="black", ms=4, label="annotated site")
            ax.set(ylabel=kind, ylim=(0, 1.12))
        axes[0].legend(loc="upper right", ncol=3, fontsize=8)
        axes[0].set_title(f"{gene_label(gene)} (held out): base vs meta vs annotated sites")
        axes[1].set_xlabel("position in transcript (nt)")
        out.append((f"Gene {gene_label(gene)}", _png(fig)))
        plt.close(fig)
    return out


def gene_label(gene: dict) -> str:
    """``NAME (id ID)`` when the gene has a name, else ``ID``."""
    name, gene_id = gene.get("gene_name") or "", str(gene["gene_id"])
    return f"{name} (id {gene_id})" if name and name != gene_id else gene_id


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _reliability_rows(reliability: dict) -> list[list[str]]:
    """One row per probability bin that holds positions: its range, then per model count / predicted / observed."""
    names = [n for n in ("base", "meta") if reliability.get(n)]
    if not names:
        return []
    bins = len(reliability[names[0]]["count"])
    rows = []
    for b in range(bins):
        if not any(reliability[n]["count"][b] for n in names):
            continue
        row = [f"{b / bins:.2f}-{(b + 1) / bins:.2f}"]
        for n in names:
            c = reliability[n]
            row += [
                f"{c['count'][b]:,}",
                f"{c['mean_predicted'][b]:.4f}" if c["count"][b] else "-",
                f"{c['observed'][b]:.4f}" if c["count"][b] else "-",
            ]
        rows.append(row)
    return rows


def write_report(
    path: str | os.PathLike,
    metrics: dict,
    title: str = "metalayer report",
    gene: dict | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Write the report. ``metrics`` is the content of a run's ``metrics.json`` (``meta``, ``base``, optionally
    ``meta_per_nucleotide``, ``history``, ``timing``, ``reliability``, ``pr_curves``); ``gene`` optionally
    ``{"gene_id", "gene_name", "labels" [L], "base" [L, 3], "meta" [L, 3]}`` for the track plot; ``notes``:
    lines shown under the provenance (base model, split). The version, date and command line (when a command
    wrote it) head the report."""
    base, meta = metrics.get("base") or {}, metrics["meta"]
    alone = metrics.get(NETWORK_ALONE)
    header = ["metric", "base", "meta"] + (["network alone"] if alone else [])
    rows = [
        [key, format_metric(key, base.get(key)), format_metric(key, meta.get(key))]
        + ([format_metric(key, alone.get(key))] if alone else [])
        for key in ROWS
    ]
    command = current_command_line()
    provenance = [
        f"metalayer {__version__}, {time.strftime('%Y-%m-%d %H:%M')}",
        f"command: {command}" if command else "written by a library call (no command line)",
    ]
    warning = worse_than_base(meta, base, metrics.get("meta", {}).get("n_genes"))
    warning_html = f"<p class='warning'><b>Warning:</b> {html.escape(warning)}</p>" if warning else ""
    timing = metrics.get("timing") or {}
    timing_rows = [
        [TIMING_LABELS.get(k, k.removesuffix("_s").replace("_", " ")), format_duration(v)]
        for k, v in timing.items()
        if isinstance(v, (int, float))
    ]
    if len(timing_rows) > 1:
        timing_rows.append(["total", format_duration(sum(v for v in timing.values() if isinstance(v, (int, float))))])
    reliability_rows = _reliability_rows(metrics.get("reliability") or {})
    models = [n for n in ("base", "meta") if (metrics.get("reliability") or {}).get(n)]
    reliability_header = ["predicted"] + [f"{n} {c}" for n in models for c in ("positions", "predicted", "observed")]
    figures = []
    for t, img in _figures(metrics, gene):
        figures.append(f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{img}'>")
        if t == "Reliability diagram":
            figures.append(f"<p>{html.escape(ECE_SENTENCE)}</p>")
            if reliability_rows:
                figures.append(_table(reliability_header, reliability_rows))
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in provenance + (notes or []))
    alone_note = (
        "<p>network alone: the meta model's own output, before the gene-structure decoder (and any "
        "calibration) that make the final meta column.</p>"
        if alone
        else ""
    )
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
img{{max-width:100%}}.warning{{background:#fde2e1;border:1px solid #c0392b;padding:8px}}</style>
</head><body><h1>{html.escape(title)}</h1><ul>{notes_html}</ul>{warning_html}
<h2>Held-out genes: base model vs meta-layer (same positions)</h2>
{_table(header, rows)}{alone_note}
{("<h2>Timing</h2>" + _table(["step", "time"], timing_rows)) if timing_rows else ""}
{"".join(figures)}</body></html>"""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(document)
    return path


def write_reliability_plot(
    path: str | os.PathLike,
    curves: dict[str, dict],
    title: str = "reliability",
    xlabel: str = "predicted probability",
    ylabel: str = "observed frequency",
    limits: tuple[float, float] | None = (0.0, 1.0),
) -> Path:
    """A PNG reliability diagram of several curves (``{label: reliability_curve(...)}``: ``mean_predicted``,
    ``observed``, ``count`` per bin), e.g. before/after. ``limits``: both axes' range (None: fitted to the
    curves, for values other than probabilities, e.g. predicted vs measured delta PSI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    points = []
    for (label, curve), marker in zip(curves.items(), "osd^v<>ph"):
        count = np.asarray(curve["count"])
        keep = count > 0
        x, y = np.asarray(curve["mean_predicted"], float)[keep], np.asarray(curve["observed"], float)[keep]
        points += [x, y]
        ax.plot(x, y, marker=marker, label=label)
    if limits is None:
        values = np.concatenate(points) if points else np.array([0.0, 1.0])
        values = values[np.isfinite(values)]
        lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        limits = (lo - pad, hi + pad)
    ax.plot(limits, limits, color="grey", lw=0.8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=limits, ylim=limits)
    ax.legend(loc="upper left", fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
