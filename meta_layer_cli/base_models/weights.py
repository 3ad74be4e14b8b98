"""Where a base model's weights are found: one documented lookup for every command and job.

In order:

1. ``weights`` (``--weights PATH``): a file, a folder of weight files, or a folder holding several
   flank sizes (sub-folders ``80nt``, ``400nt``, ``2000nt``, ``10000nt``);
2. ``models_dir`` (the config key ``models_dir``), then the environment variable
   ``METALAYER_MODELS``: a folder of models, searched for the model's folder names
   (:data:`FOLDER_NAMES`, e.g. ``openspliceai-mane`` or ``openspliceai`` for OpenSpliceAI);
3. SpliceAI only: the Keras files inside the installed ``spliceai`` package.

A folder holding several flank sizes gives the one ``flank`` names, by default
:data:`DEFAULT_FLANK` (10,000 nt, OpenSpliceAI's SpliceAI-10k equivalent). When nothing is found the
error says, in one line, every place that was looked at.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from meta_layer_cli.runtime.errors import InputDataError

MODELS_ENV = "METALAYER_MODELS"
FOLDER_NAMES = {
    "spliceai": ("spliceai",),
    "openspliceai": ("openspliceai-mane", "openspliceai"),
    "pangolin": ("pangolin",),
}
DEFAULT_FLANK = 10_000
logger = logging.getLogger(__name__)
_FLANK_DIR = re.compile(r"^(\d+)nt$")


def flank_folders(folder: Path) -> dict[int, Path]:
    """``{flank: sub-folder}`` for sub-folders named ``<N>nt`` (empty when there are none)."""
    if not folder.is_dir():
        return {}
    return {int(m.group(1)): p for p in folder.iterdir() if p.is_dir() and (m := _FLANK_DIR.match(p.name))}


def pick_flank(folder: Path, flank: int | None) -> Path:
    """The flank sub-folder of ``folder`` (``flank`` or :data:`DEFAULT_FLANK`), or ``folder`` itself
    when it has none. A requested flank the folder lacks is an error listing the ones it has."""
    found = flank_folders(folder)
    if not found:
        return folder
    want = flank if flank is not None else DEFAULT_FLANK
    if want not in found:
        have = ", ".join(f"{f}" for f in sorted(found))
        raise InputDataError(f"{folder} has no {want}nt weights (flank sizes there: {have}); pass --flank")
    if flank is None and len(found) > 1:  # a silent default here cost a user hours of CPU time: say it
        others = "|".join(str(f) for f in sorted(found) if f != want)
        logger.info(
            f"{folder} holds several flank sizes: using the {want:,}-nt model (the largest context, the "
            f"slowest); --flank {others} picks another"
        )
    return found[want]


def find_weights(
    name: str,
    weights: str | os.PathLike | None = None,
    flank: int | None = None,
    models_dir: str | os.PathLike | None = None,
) -> Path | None:
    """The weights path for base model ``name`` (module docstring), or None for SpliceAI's packaged files.

    Raises InputDataError naming every place looked at when nothing is found.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise InputDataError(f"{name} weights not found: --weights {path} does not exist")
        return pick_flank(path, flank) if path.is_dir() else path
    looked = []
    candidates = [("config models_dir", models_dir), (f"${MODELS_ENV}", os.environ.get(MODELS_ENV))]
    for label, root in candidates:
        if not root:
            looked.append(f"{label} (not set)")
            continue
        root_path = Path(root).expanduser()
        for folder_name in FOLDER_NAMES.get(name, (name,)):
            folder = root_path / folder_name
            if folder.is_dir():
                return pick_flank(folder, flank)
        looked.append(f"{label} = {root_path} (no {' or '.join(FOLDER_NAMES.get(name, (name,)))} folder)")
    if name == "spliceai":
        return None  # the packaged Keras files
    raise InputDataError(
        f"{name} weights not found: looked at --weights (not given), {', '.join(looked)}; "
        f"give --weights PATH or set {MODELS_ENV} to a folder holding {FOLDER_NAMES.get(name, (name,))[0]}/"
    )
