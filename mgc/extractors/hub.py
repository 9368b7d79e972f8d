"""Model snapshots from the Hugging Face hub: pinned to a commit and to one weights file whose
sha256 and size come from the public record, cached, verified before anything reads them.

The foundation models (MERT, CLAP, MuQ) publish a folder, not one file: `config.json` (the
architecture), the preprocessor's JSON, tokenizer files, and weights. `weights` is:
- "pretrained": the snapshot of `repo_id` at the pinned `revision` (a commit hash), fetched
  once by huggingface_hub into `MGC_CACHE/hf` (HF's own cache layout, so HF tools can share
  it): the JSON and text files and the one pinned weights file, nothing else. The weights
  file must have the pinned size and sha256 (and the sha256 the hub names its blob by).
- a path: a folder in the same layout, e.g. one written by `save_pretrained`.

What is read, and how: `*.safetensors` (tensors only, no code) always; a pickled
`pytorch_model.bin` only when its sha256 is one the code pins, i.e. the exact file the
repository published at the pinned commit, and then through `torch.load(weights_only=True)`
(PyTorch's restricted unpickler, which transformers uses for `.bin` files when asked to).
Several published revisions hold nothing but `pytorch_model.bin` (README "Pinned revisions"),
so refusing every pickle would refuse the models; any other pickle can run code when loaded
and is refused unread. No model code from a repository is ever run (no
`trust_remote_code`); the architecture is rebuilt from a library class.
huggingface_hub is imported only when a snapshot is fetched: it is the `mgc[hf]` extra.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgc.cache import cache_dir
from mgc.download import sha256_file
from mgc.extractors.weights import PRETRAINED, WeightsError

CONFIG_FILES = ("*.json", "*.txt")
"""What a snapshot download fetches besides the weights: configs, tokenizer vocabularies."""
SAFETENSORS = "model.safetensors"
PICKLE = "pytorch_model.bin"
PICKLE_WEIGHTS = (PICKLE, "pytorch_model.bin.index.json", "model.ckpt", "tf_model.h5")
HF_EXTRA = "pip install 'mgc[hf]'"


@dataclass(frozen=True)
class PinnedWeights:
    """A snapshot's weights file as the public record gives it: its name, and its sha256
    and size in bytes where they could be established (None where not)."""

    file: str = SAFETENSORS
    sha256: str | None = None
    size: int | None = None

    @property
    def is_pickle(self) -> bool:
        return not self.file.endswith(".safetensors")


@dataclass(frozen=True)
class HubModel:
    """One published model: its hub repository, the commit its files are pinned to, its
    weights file and the licence of the weights (the model card's)."""

    repo_id: str
    revision: str
    weights: PinnedWeights = field(default_factory=PinnedWeights)
    licence: str = "unknown"

    def at(self, revision: str | None) -> HubModel:
        """This model at another commit, whose weights file nothing pins: only its
        `model.safetensors` can then be read. None: the pinned commit."""
        if revision is None or revision == self.revision:
            return self
        return HubModel(self.repo_id, revision, PinnedWeights(), self.licence)


@dataclass(frozen=True)
class Snapshot:
    """A verified local snapshot: its folder, a label for reports, its weights file and
    that file's sha256 (of the shards' names and digests when sharded)."""

    label: str
    path: Path
    sha256: str
    weights_file: str


def hub_cache() -> Path:
    """Where pretrained snapshots live: `MGC_CACHE/hf`, in huggingface_hub's cache layout."""
    return cache_dir("hf")


def snapshot_folder(model: HubModel) -> Path:
    """The folder huggingface_hub keeps `model`'s files in (and where to put them by hand)."""
    owner_name = model.repo_id.replace("/", "--")
    return hub_cache() / f"models--{owner_name}" / "snapshots" / model.revision


def resolve_snapshot(weights: str | Path, model: HubModel, *, progress: bool = True,
                     pinned: tuple[PinnedWeights, ...] = ()) -> Snapshot:
    """`weights` ("pretrained" or a folder) as a checked local snapshot of `model`'s layout.

    `pinned`: every weights file the extractor pins (all its variants); a folder's pickled
    weights are read only if they are one of these."""
    if str(weights) == PRETRAINED:
        if model.weights.sha256 is None and model.weights.is_pickle:
            raise WeightsError(
                f"{model.repo_id}@{model.revision} publishes its weights only as "
                f"{model.weights.file}, a pickle whose sha256 is in no public record mgc "
                "could check, so it is neither downloaded nor read. Download it yourself, "
                "load it once with torch.load(weights_only=True), save the tensors with "
                "safetensors.torch.save_file as model.safetensors beside its config.json "
                "and set weights to that folder")
        folder = _fetch(model, progress=progress)
        return Snapshot(f"{model.repo_id}@{model.revision}", folder,
                        _pinned_digest(folder / model.weights.file, model), model.weights.file)
    folder = Path(weights).expanduser()
    if not folder.is_dir():
        raise WeightsError(f"weights={str(weights)!r}: not a folder; use 'pretrained' or a "
                           f"folder in the layout of {model.repo_id} (config.json and "
                           "model.safetensors)")
    digests = weights_digests(folder, pinned)
    return Snapshot(str(folder), folder, combined_digest(digests),
                    next(iter(digests)) if len(digests) == 1 else "*.safetensors")


def _pinned_digest(path: Path, model: HubModel) -> str:
    """The sha256 of the fetched weights file, once it is shown to be the pinned one:
    present, of the pinned size and sha256, and the blob the hub named by its sha256. A
    pickle whose sha256 nothing pins is refused before it is read."""
    pin = model.weights
    delete = f"delete {path.resolve()} and run again to download it"
    if not path.exists():
        raise WeightsError(f"{model.repo_id}@{model.revision}: no {pin.file} in {path.parent} "
                           "(the file the pinned snapshot publishes, README \"Pinned "
                           "revisions\")")
    if pin.size is not None and path.stat().st_size != pin.size:
        raise WeightsError(f"{path}: {path.stat().st_size} bytes, but {pin.file} of "
                           f"{model.repo_id}@{model.revision} has {pin.size}; {delete}")
    actual = sha256_file(path)
    published = path.resolve().name
    if len(published) == 64 and published != actual:
        raise WeightsError(f"{path}: sha256 is {actual} but the hub published {published}; "
                           f"{delete}")
    if pin.sha256 is not None and actual != pin.sha256:
        raise WeightsError(f"{path}: sha256 {actual}, but {pin.file} of "
                           f"{model.repo_id}@{model.revision} is pinned at {pin.sha256}; "
                           f"{delete}")
    return actual


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
                                      cache_dir=hub_cache(),
                                      allow_patterns=[*CONFIG_FILES, model.weights.file]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise WeightsError(
            f"cannot fetch {model.repo_id} at revision {model.revision} "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            f"Offline, download config.json, the preprocessor/tokenizer JSON and text files and "
            f"{model.weights.file} of https://huggingface.co/{model.repo_id}/tree/"
            f"{model.revision} into {snapshot_folder(model)} (huggingface_hub's cache, "
            f"MGC_CACHE/hf), or into any folder and set weights to its path") from None
    finally:
        if not bars_were_off:
            enable_progress_bars()


def weights_digests(folder: Path, pinned: tuple[PinnedWeights, ...] = ()) -> dict[str, str]:
    """The folder's weights files by name, with their sha256: its safetensors files, or
    else a pickle whose sha256 is pinned (`pinned`); any other pickle is refused unread."""
    found = sorted(folder.glob("*.safetensors"))
    if found:
        return {path.name: sha256_file(path) for path in found}
    pickled = [name for name in PICKLE_WEIGHTS if (folder / name).exists()]
    if PICKLE in pickled:
        digest = sha256_file(folder / PICKLE)
        if any(pin.file == PICKLE and pin.sha256 == digest for pin in pinned):
            return {PICKLE: digest}
    if pickled:
        raise WeightsError(f"{folder}: only {', '.join(pickled)} (pickled weights, which can "
                           "run code when loaded) and no *.safetensors; mgc reads a pickle only "
                           "when its sha256 is one it pins (README, \"Pinned revisions\"). "
                           "Use weights: pretrained, or convert the file yourself with "
                           "safetensors.torch.save_file")
    raise WeightsError(f"{folder}: no *.safetensors weights file")


def combined_digest(digests: dict[str, str]) -> str:
    """One file's sha256, or for shards the sha256 of their names and digests."""
    if len(digests) == 1:
        return next(iter(digests.values()))
    return hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(digests.items())).encode()
                          ).hexdigest()


def load_pretrained(model_class: Any, snapshot: Snapshot, **kwargs: Any) -> Any:
    """`model_class.from_pretrained` on the snapshot's verified weights file: safetensors,
    or a pinned pickle through torch.load(weights_only=True); a checkpoint with missing,
    unexpected or misshapen parameters is refused, naming them."""
    try:
        model, info = model_class.from_pretrained(
            snapshot.path, local_files_only=True, output_loading_info=True, weights_only=True,
            use_safetensors=snapshot.weights_file != PICKLE, **kwargs)
    except pickle.UnpicklingError as error:
        raise WeightsError(f"{snapshot.path / snapshot.weights_file}: the restricted unpickler "
                           "refused it, so it holds more than tensors and was not loaded "
                           f"({str(error).splitlines()[-1][:200]})") from None
    check_loading(info, snapshot.path)
    return model


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
