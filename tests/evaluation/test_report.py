"""report.html: the table holds the run's numbers, one figure per plot, text escaped, written atomically."""

import re

import numpy as np

from meta_layer_cli.evaluation.metrics import canonical_metrics, precision_recall_curve, reliability_curve
from meta_layer_cli.evaluation.report import ROWS, format_metric, write_report


def _run(seed: int) -> tuple[dict, dict, dict]:
    """(metrics, PR curves, reliability curve) of random probabilities; a higher seed ranks sites better."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=5000, p=[0.98, 0.01, 0.01])
    probs = rng.dirichlet([1, 1, 1], size=5000)
    probs[np.arange(5000), labels] += 2.0 * seed
    probs /= probs.sum(1, keepdims=True)
    curves = {kind: precision_recall_curve(probs[:, c], labels == c) for c, kind in ((1, "acceptor"), (2, "donor"))}
    return canonical_metrics(probs, labels), curves, reliability_curve(probs[:, 1], labels == 1)


def test_the_table_holds_the_run_numbers_and_one_figure_per_plot(tmp_path):
    (base, base_pr, base_rel), (meta, meta_pr, meta_rel) = _run(0), _run(1)
    metrics = {
        "base": base,
        "meta": meta,
        "pr_curves": {"base": base_pr, "meta": meta_pr},
        "reliability": {"base": base_rel, "meta": meta_rel},
    }
    text = write_report(tmp_path / "report.html", metrics, title="run <1>", notes=["a & b"]).read_text()
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>(<td>[^<]*</td><td>[^<]*</td>)</tr>", text))
    assert list(rows) == list(ROWS)
    for key in ROWS:
        assert rows[key] == f"<td>{format_metric(key, base.get(key))}</td><td>{format_metric(key, meta.get(key))}</td>"
    assert "e-" in rows["ece"]  # a small ECE is not printed as 0.0000
    assert text.count("data:image/png;base64,") == 2  # PR curves, reliability; no gene given
    assert "run &lt;1&gt;" in text and "a &amp; b" in text and "run <1>" not in text
    flat = np.full((50, 3), 1 / 3)
    gene = {"gene_id": "g", "labels": np.zeros(50, int), "base": flat, "meta": flat}
    assert write_report(tmp_path / "report.html", metrics, gene=gene).read_text().count("data:image/png") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary file left


def test_format_metric():
    assert format_metric("ece", 1.23456e-4) == "1.23e-04"
    assert format_metric("pr_auc_macro", 0.98765) == "0.9877"
    assert format_metric("fp_at_0.5", 12) == "12" and format_metric("ece", None) == "-"


def test_the_report_says_what_made_it_and_warns_when_the_meta_layer_is_worse(tmp_path):
    """Provenance (version, date, command), timing as a table, a training curve, the network-alone column, the
    gene's name with its id, ECE explained with the counts of the reliability bins, and a loud warning when the
    meta-layer loses to its base model."""
    from meta_layer_cli import __version__
    from meta_layer_cli.runtime.provenance import set_command_line

    (good, good_pr, good_rel), (bad, bad_pr, bad_rel) = _run(1), _run(0)
    history = [
        {"epoch": e, "train_loss": 0.1 / e, "val_pr_auc_macro": 0.5 + 0.1 * e, "val_base_pr_auc_macro": 0.6}
        for e in (1, 2, 3)
    ]
    metrics = {
        "base": good,
        "meta": bad,
        "meta_per_nucleotide": good,
        "history": history,
        "timing": {"base_tracks_s": 12.5, "training_s": 310.0, "evaluation_s": 4.0},
        "pr_curves": {"base": good_pr, "meta": bad_pr},
        "reliability": {"base": good_rel, "meta": bad_rel},
    }
    flat = np.full((50, 3), 1 / 3)
    gene = {"gene_id": "ENSG0001", "gene_name": "BRCA9", "labels": np.zeros(50, int), "base": flat, "meta": flat}
    set_command_line("metalayer train-canonical --data prepared/x")
    try:
        text = write_report(tmp_path / "report.html", metrics, gene=gene).read_text()
    finally:
        set_command_line(None)
    assert f"metalayer {__version__}" in text and "command: metalayer train-canonical --data prepared/x" in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text)
    assert "{" not in text.split("<body>")[1].split("<img")[0]  # no raw dict anywhere above the figures
    assert "<td>training</td><td>5.2 min</td>" in text and "<td>total</td>" in text
    assert "Training curve" in text and text.count("data:image/png;base64,") == 4
    assert "<th>network alone</th>" in text
    assert f"<td>{format_metric('pr_auc_macro', good['pr_auc_macro'])}</td></tr>" in text  # network-alone column
    assert "BRCA9 (id ENSG0001)" in text
    assert "class='warning'" in text and "WORSE than its base model" in text
    assert "expected calibration error" in text
    busiest = int(np.argmax(good_rel["count"]))
    assert f"<td>{good_rel['count'][busiest]:,}</td>" in text  # the bins' counts are in the report
    good_metrics = {**metrics, "meta": good}
    assert "class='warning'" not in write_report(tmp_path / "r2.html", good_metrics).read_text()
