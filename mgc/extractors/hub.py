"""Model snapshots from the Hugging Face hub: pinned, safetensors only, cached, verified.

The foundation models (MERT, CLAP) publish a folder, not one file: `config.json` (the
architecture), the preprocessor's JSON, tokenizer files, and weights. `weights` is:
- "pretrained": the snapshot of `repo_id` at the pinned `revision` (a commit hash), fetched
  once by huggingface_hub into `MGC_CACHE/hf` (HF's own cache layout, so HF tools can share
  it) with only JSON, text and `*.safetensors` files; each weights file is checked against
  the sha256 the hub names its blob by (its LFS object id).
- a path: a folder in the same layout, e.g. one written by `save_pretrained`.

Only safetensors weights are read: a folder holding nothing but `pytorch_model.bin` (a
pickle) is refused, never unpickled, and no model code from a repository is ever run (no
`trust_remote_code`); the architecture is rebuilt from a library class.
huggingface_hub is imported only when a snapshot is fetched: it is the `mgc[hf]` extra.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgc.cache import cache_dir
from mgc.download import sha256_file
from mgc.extractors.weights import PRETRAINED, WeightsError

ALLOWED_FILES = ("*.json", "*.txt", "*.safetensors")
"""What a snapshot download fetches: configs, tokenizer vocabularies, safetensors weights."""
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "tf_model.h5")
HF_EXTRA = "pip install 'mgc[hf]'"


@dataclass(frozen=True)
class HubModel:
    """One published model: its hub repository and the commit its files are pinned to."""

    repo_id: str
    revision: str


@dataclass(frozen=True)
class Snapshot:
    """A verified local snapshot: its folder, a label for reports and a digest of its weights."""

    label: str
    path: Path
    sha256: str


def hub_cache() -> Path:
    """Where pretrained snapshots live: `MGC_CACHE/hf`, in huggingface_hub's cache layout."""
    return cache_dir("hf")


def snapshot_folder(model: HubModel) -> Path:
    """The folder huggingface_hub keeps `model`'s files in (and where to put them by hand)."""
    owner_name = model.repo_id.replace("/", "--")
    return hub_cache() / f"models--{owner_name}" / "snapshots" / model.revision


def resolve_snapshot(weights: str | Path, model: HubModel, *, progress: bool = True) -> Snapshot:
    """`weights` ("pretrained" or a folder) as a checked local snapshot of `model`'s layout."""
    if str(weights) == PRETRAINED:
        folder = _fetch(model, progress=progress)
        return Snapshot(f"{model.repo_id}@{model.revision}", folder,
                        weights_digest(folder, verify_blobs=True))
    folder = Path(weights).expanduser()
    if not folder.is_dir():
        raise WeightsError(f"weights={str(weights)!r}: not a folder; use 'pretrained' or a "
                           f"folder in the layout of {model.repo_id} (config.json and "
                           "*.safetensors)")
    return Snapshot(str(folder), folder, weights_digest(folder, verify_blobs=False))


def _fetch(model: HubModel, *, progress: bool) -> Path:
    """The pinned snapshot, downloaded once; offline and absent, an error that says where the
    files go by hand."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError:
        raise WeightsError(f"pretrained {model.repo_id} needs huggingface_hub: "
                           f"{HF_EXTRA}") from None
    bars_were_off = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        return Path(snapshot_download(model.repo_id, revision=model.revision,
                                      cache_dir=hub_cache(), allow_patterns=list(ALLOWED_FILES)))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise WeightsError(
            f"cannot fetch {model.repo_id} at revision {model.revision} "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            f"Offline, download config.json, the preprocessor/tokenizer JSON and text files and "
            f"the *.safetensors weights of https://huggingface.co/{model.repo_id}/tree/"
            f"{model.revision} into {snapshot_folder(model)} (huggingface_hub's cache, "
            f"MGC_CACHE/hf), or into any folder and set weights to its path") from None
    finally:
        if not bars_were_off:
            enable_progress_bars()


def safetensors_files(folder: Path) -> list[Path]:
    """The folder's safetensors weights; a folder with only pickled weights is refused."""
    found = sorted(folder.glob("*.safetensors"))
    if found:
        return found
    pickled = [name for name in PICKLE_WEIGHTS if (folder / name).exists()]
    if pickled:
        raise WeightsError(f"{folder}: only {', '.join(pickled)} (pickled weights, which can "
                           "run code when loaded) and no *.safetensors; mgc loads safetensors "
                           "only. Use a revision that publishes model.safetensors, or convert "
                           "the file yourself with safetensors.torch.save_file")
    raise WeightsError(f"{folder}: no *.safetensors weights file")


def weights_digest(folder: Path, *, verify_blobs: bool) -> str:
    """sha256 of the weights (one file: its own; shards: of their names and digests).

    `verify_blobs`: in huggingface_hub's cache a file is a link to a blob named by the
    sha256 the hub published for it, so a truncated or swapped download is caught here.
    """
    digests = {}
    for path in safetensors_files(folder):
        actual = sha256_file(path)
        published = path.resolve().name
        if verify_blobs and len(published) == 64 and published != actual:
            raise WeightsError(f"{path}: sha256 is {actual} but the hub published {published}; "
                               f"delete {path.resolve()} and run again to download it")
        digests[path.name] = actual
    if len(digests) == 1:
        return next(iter(digests.values()))
    return hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(digests.items())).encode()
                          ).hexdigest()


def read_config(folder: Path) -> dict[str, Any]:
    """The snapshot's `config.json` as a dict, or a WeightsError naming the folder."""
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise WeightsError(f"{path}: cannot read the model's config.json "
                           f"({type(error).__name__})") from None


def check_loading(info: dict[str, Any], folder: Path) -> None:
    """Refuse a checkpoint that left parameters out or carried ones the network lacks."""
    problems = [f"{what}: {', '.join(sorted(map(str, info.get(key) or []))[:6])}"
                for key, what in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"),
                                  ("mismatched_keys", "wrong shape"))
                if info.get(key)]
    if problems:
        raise WeightsError(f"{folder} does not fit the network: {'; '.join(problems)}")
