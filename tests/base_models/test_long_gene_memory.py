import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "long_gene_memory.py"


@pytest.mark.slow
def test_2_3_mb_gene_runs_in_under_2_gb():
    out = subprocess.run([sys.executable, str(SCRIPT), "--nt", "2300000"], capture_output=True, text=True, check=True)
    peak = float(re.search(r"^peak RSS: ([\d,]+) MB", out.stdout, re.M).group(1).replace(",", ""))
    assert peak < 2048, out.stdout
