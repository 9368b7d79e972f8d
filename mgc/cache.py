"""Where downloaded datasets and weights are kept between runs (`MGC_CACHE`, default ~/.cache/mgc).

Outside the repository on purpose: a 7 GiB archive or a 300 MB checkpoint is fetched once per
machine, not once per clone or per DVC experiment.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The cache folder for `kind` ("datasets", "weights", "splits"), created on demand."""
    root = Path(os.environ.get("MGC_CACHE", "~/.cache/mgc")).expanduser()
    folder = root / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder
