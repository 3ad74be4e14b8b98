"""A self-contained ``report.html``: metrics table, PR curves, reliability diagram, one gene's tracks."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from meta_layer_cli.io.atomic import atomic_path

ROWS = (
    "pr_auc_acceptor", "pr_auc_donor", "pr_auc_macro", "topk_acceptor", "topk_donor", "topk_mean",
    "fp_at_0.5", "fn_at_0.5", "fp_at_f1opt", "fn_at_f1opt", "ece",
)  # fmt: skip


def format_metric(key: str, value) -> str:
    """One metric as tables show it (terminal and report): ECE (~1e-4 per nucleotide) with its exponent,
    where four decimals would print 0.0000; other floats to four decimals; counts as they are."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2e}" if key == "ece" else f"{value:.4f}"
    return str(value)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _figures(metrics: dict, gene: dict | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
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

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    for name, marker in (("base", "s"), ("meta", "o")):
        curve = metrics.get("reliability", {}).get(name)
        if curve:
            count = np.asarray(curve["count"])
            keep = count > 0
            ece = (metrics.get(name) or {}).get("ece", float("nan"))
            ax.plot(np.asarray(curve["mean_predicted"])[keep], np.asarray(curve["observed"])[keep], marker=marker,
                    label=f"{name} (ECE {ece:.2e})")  # fmt: skip
    ax.set(title="reliability (acceptor + donor)", xlabel="predicted probability", ylabel="observed frequency")
    ax.legend(loc="upper left")
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
        axes[0].set_title(f"gene {gene['gene_id']} (held out): base vs meta vs annotated sites")
        axes[1].set_xlabel("position in transcript (nt)")
        out.append((f"Gene {gene['gene_id']}", _png(fig)))
        plt.close(fig)
    return out


def write_report(path: str | os.PathLike, metrics: dict, title: str = "metalayer report", gene: dict | None = None,
                 notes: list[str] | None = None) -> Path:  # fmt: skip
    """Write the report. ``metrics`` is the content of a run's ``metrics.json``; ``gene`` optionally
    ``{"gene_id", "labels" [L], "base" [L, 3], "meta" [L, 3]}`` for the track plot."""
    base, meta = metrics.get("base") or {}, metrics["meta"]
    rows = []
    for key in ROWS:
        b, m = format_metric(key, base.get(key)), format_metric(key, meta.get(key))
        rows.append(f"<tr><td>{key}</td><td>{b}</td><td>{m}</td></tr>")
    figures = "".join(
        f"<h2>{html.escape(t)}</h2><img alt='{html.escape(t)}' src='data:image/png;base64,{img}'>"
        for t, img in _figures(metrics, gene)
    )
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes or [])
    document = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
img{{max-width:100%}}</style>
</head><body><h1>{html.escape(title)}</h1><ul>{notes_html}</ul>
<h2>Held-out genes: base model vs meta-layer (same positions)</h2>
<table><tr><th>metric</th><th>base</th><th>meta</th></tr>{"".join(rows)}</table>{figures}</body></html>"""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(document)
    return path


def write_reliability_plot(path: str | os.PathLike, curves: dict[str, dict], title: str = "reliability",
                           xlabel: str = "predicted probability", ylabel: str = "observed frequency",
                           limits: tuple[float, float] | None = (0.0, 1.0)) -> Path:  # fmt: skip
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
