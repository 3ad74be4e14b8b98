"""JSON values from numeric results."""

from __future__ import annotations

import math

import numpy as np


def json_safe(obj: object) -> object:
    """NaN / infinity -> None, numpy scalars -> Python numbers, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
