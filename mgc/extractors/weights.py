"""Pretrained weight files: where they come from, how they are verified, how they are loaded.

`weights` in every extractor is one of:
- "pretrained": the official file, downloaded once into `MGC_CACHE/weights` and verified
  against its pinned sha256 before use. Where the authors publish no hash, the file's size
  (if reported) is checked and its sha256 is recorded on first download and enforced on
  every later use, so a swapped file is caught even then; the README lists which files.
- "random": no file; the network keeps its seeded random initialisation, an explicit
  baseline that every report labels "random weights".
- a path: a local file in the official layout, loaded the same way.

Files are loaded with `torch.load(weights_only=True)`: a checkpoint is data, and a pickle
that tries to run code is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgc.cache import cache_dir
from mgc.download import (
    DIGEST_HEX_LENGTHS,
    Checksum,
    ChecksumError,
    DownloadError,
    fetch_file,
    sha256_file,
)
from mgc.errors import UserError

RANDOM = "random"
PRETRAINED = "pretrained"


class WeightsError(UserError, ValueError):
    """A weights file that is missing, fails verification, or does not fit the network."""


@dataclass(frozen=True)
class WeightFile:
    """An official weights file: its cache name, mirrors in order, and what pins it.

    `sha256` may be a prefix (torch.hub names files by the first 8 hex digits of theirs);
    None means the authors publish no hash (then `size_bytes`, when reported, is checked and
    the sha256 is recorded on first download).
    """

    file_name: str
    urls: tuple[str, ...]
    sha256: str | None
    size_bytes: int | None = None


@dataclass(frozen=True)
class ResolvedWeights:
    """Which weights a network carries, as recorded in the embeddings' metadata."""

    label: str
    path: Path | None
    sha256: str | None


def resolve_weights(weights: str | Path, official: WeightFile, *, progress: bool = True
                    ) -> ResolvedWeights:
    """Turn a `weights` setting into a verified local file (or None for random weights)."""
    if str(weights) == RANDOM:
        return ResolvedWeights(RANDOM, None, None)
    if str(weights) == PRETRAINED:
        path, sha256 = _fetch_official(official, progress=progress)
        return ResolvedWeights(PRETRAINED, path, sha256)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights={str(weights)!r}: no such file; use 'pretrained', "
                           f"'random' or the path of a {official.file_name}-style file")
    return ResolvedWeights(str(path), path, sha256_file(path))


def _fetch_official(official: WeightFile, *, progress: bool) -> tuple[Path, str]:
    """The verified cached file and its sha256, hashing a 300 MB checkpoint once more only
    where the pin is a prefix."""
    dest = cache_dir("weights") / official.file_name
    checksum = Checksum("sha256", official.sha256) if official.sha256 else None
    try:
        fetch_file(official.urls, dest, checksum, progress=progress)
    except DownloadError as error:
        raise WeightsError(str(error)) from None
    if checksum is None:
        return dest, _trust_on_first_use(dest, official)
    pinned_in_full = len(checksum.hexdigest) == DIGEST_HEX_LENGTHS["sha256"]
    return dest, checksum.hexdigest if pinned_in_full else sha256_file(dest)


def _trust_on_first_use(dest: Path, official: WeightFile) -> str:
    """Check a file with no published hash against its size and the sha256 first recorded."""
    if official.size_bytes is not None and dest.stat().st_size != official.size_bytes:
        size = dest.stat().st_size
        dest.unlink()
        raise WeightsError(f"{dest}: {size} bytes, expected {official.size_bytes}; the partial "
                           "or wrong file was deleted, run again to download it")
    record = dest.with_name(dest.name + ".sha256")
    actual = sha256_file(dest)
    if not record.exists():
        record.write_text(actual + "\n")
    elif record.read_text().strip() != actual:
        raise ChecksumError(f"{dest}: sha256 is {actual} but {record.read_text().strip()} was "
                            f"recorded when it was first downloaded; delete both files to "
                            "download it again")
    return actual


def load_checkpoint(path: Path) -> Any:
    """Unpickle a checkpoint as data only.

    Some official files (VGGish's PCA parameters) hold numpy arrays; their reconstruction
    functions are allowed explicitly, which still refuses any other global.
    """
    reconstruct = np._core.multiarray._reconstruct
    numpy_globals = [reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct"),
                     np.ndarray, np.dtype, *(type(np.dtype(code)) for code in "fdil?")]
    try:
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"{path}: not a loadable weights file ({type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''})") from None


def select_state_dict(checkpoint: Any, prefixes: Iterable[str], *, wrapper_key: str = "model"
                      ) -> dict[str, torch.Tensor]:
    """The entries of a checkpoint that belong to a network with top-level `prefixes`.

    Official files come as a bare state dict, as `{"model": state_dict, ...}`, or with keys
    prefixed `model.` (BYOL-A v2 training checkpoints); training-only parts (projector,
    predictor, optimiser) are dropped, as the authors' own loader does.
    """
    state = checkpoint
    if isinstance(state, Mapping) and isinstance(state.get(wrapper_key), Mapping):
        state = state[wrapper_key]
    if not isinstance(state, Mapping):
        raise WeightsError(f"expected a state dict, found {type(state).__name__}")
    prefixes = tuple(prefixes)
    selected = {}
    for key, value in state.items():
        name = key.removeprefix(f"{wrapper_key}.")
        if name.startswith(prefixes) and isinstance(value, torch.Tensor):
            selected[name] = value
    return selected


def load_into(network: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load `state` strictly; a mismatch names the file and the keys, not a torch trace."""
    expected = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    problems = []
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    wrong = [f"{name} {tuple(value.shape)} (expected {expected[name]})"
             for name, value in state.items()
             if name in expected and tuple(value.shape) != expected[name]]
    for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if names:
            more = f" and {len(names) - 6} more" if len(names) > 6 else ""
            problems.append(f"{what}: {', '.join(names[:6])}{more}")
    if problems:
        raise WeightsError(f"{source} does not fit the network: {'; '.join(problems)}")
    # The file's tensors become the network's (in its dtypes), not copies: one copy of the
    # weights in memory instead of two while loading (CNN14: 300 MB).
    own = network.state_dict()
    network.load_state_dict({name: value.to(own[name].dtype) for name, value in state.items()},
                            strict=True, assign=True)
