"""The README's Python example of the variant-model API runs as written, on real Vex-seq rows."""

from __future__ import annotations

import re

import numpy as np

from tests.conftest import REPO, SHARED, shared_path


def test_readme_variant_example_runs(capsys):
    shared_path("data", "variants", "vexseq_hepg2_train.csv")  # skips where the shared data is missing
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- variant-api-example -->\n```python\n(.*?)```", text, re.S).group(1)
    code = block.replace('"../shared/', f'"{SHARED}/')
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out, new = namespace["out"], namespace["new"]
    assert len(out.delta) == len(new) > 0 and np.all(out.lo < out.delta) and np.all(out.delta < out.hi)
    assert re.search(r"\d+% of new variants inside", capsys.readouterr().out)
    assert type(namespace["model"].pool).__name__ == "AttentionPool"
    assert namespace["per_position"].config.width == 64
