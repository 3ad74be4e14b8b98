"""End-to-end jobs composed from the layers below (what ``metasplice demo`` runs)."""

from __future__ import annotations

import os
from pathlib import Path

from metasplice.artifacts import demo_genes, predict_tracks
from metasplice.base_models import load_base_model
from metasplice.evaluation import evaluate_tracks
from metasplice.io.demo import demo_gene_ids, demo_gene_length


def default_demo_genes(n_genes: int) -> list[str]:
    """The ``n_genes`` shortest demo genes (cheap to predict on 2 CPU cores), by id."""
    ids = sorted(demo_gene_ids(), key=lambda g: (demo_gene_length(g), int(g)))
    return sorted(ids[:n_genes], key=int)


def run_base_demo(out_dir: str | os.PathLike, n_genes: int = 40, device: str = "cpu") -> dict:
    """Predict SpliceAI tracks for demo genes (resumable) and evaluate them against the labels."""
    out_dir = Path(out_dir)
    ids = default_demo_genes(n_genes)
    model = load_base_model("spliceai", device=device)
    predict_tracks(model, demo_genes(ids), out_dir / "tracks", genome_build="hg19", source={"dataset": "demo"})
    return evaluate_tracks(out_dir / "tracks", ids)
