"""Files shipped inside installed PyPI packages, found via package metadata (never by import).

Importing ``spliceai`` would pull in TensorFlow; ``frame_alignment_checks`` pulls
in plotting stacks. Only their data files are needed: SpliceAI's five Keras weight files and its
GRCh37/GRCh38 annotation tables (``spliceai``), the demo genes and the WT1 assay files
(``frame-alignment-checks``). Both are optional, in metalayer's ``demo`` extra (``pip install
'metalayer[demo]'``); asking for one of their files without them is one line naming that extra.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from meta_layer_cli.runtime.errors import InputDataError

#: distribution -> the metalayer extra that installs it
EXTRAS = {"spliceai": "demo", "frame-alignment-checks": "demo"}


def package_file(distribution: str, relative: str, what: str | None = None) -> Path:
    """Absolute path of ``relative`` inside the installed ``distribution``.

    Raises InputDataError (one line: which extra to install) when the distribution is not installed;
    ``what`` names the file for that message (``relative`` by default).
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        extra = EXTRAS.get(distribution)
        install = (
            f"install metalayer's {extra} extra: pip install 'metalayer[{extra}]' (in a checkout: "
            f"pip install -e '.[{extra}]')"
            if extra
            else f"pip install {distribution}"
        )
        raise InputDataError(
            f"{what or relative}: shipped in the optional package {distribution!r}, which is not "
            f"installed here; {install}"
        ) from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise FileNotFoundError(f"{relative} not found in installed package {distribution!r} (looked at {path})")
    return path
