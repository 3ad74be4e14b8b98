"""Files shipped inside installed PyPI packages, found via package metadata (never by import).

Importing ``spliceai`` would pull in TensorFlow; ``frame_alignment_checks`` pulls
in plotting stacks. Only their data files are needed.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


def package_file(distribution: str, relative: str) -> Path:
    """Absolute path of ``relative`` inside the installed ``distribution``; clear error if absent."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"package {distribution!r} is not installed; it carries {relative} (pip install {distribution})"
        ) from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise FileNotFoundError(f"{relative} not found in installed package {distribution!r} (looked at {path})")
    return path
