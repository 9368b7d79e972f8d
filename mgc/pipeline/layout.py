"""Where the pipeline keeps everything: the `data/ models/ metrics/ plots/` tree of dvc.yaml.

One place names every path, so a stage, `mgc download` and `mgc predict` agree on it and the
library below never learns it. Embeddings are grouped by model and run metrics by train set,
so each train stage depends on exactly its model's folder and the report stage on
`metrics/runs` without depending on its own `metrics/summary.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

JOINT = "joint"
"""The train set that merges every dataset's label space (`merge.strategy`)."""


@dataclass(frozen=True)
class Layout:
    """The project's output tree below `root` (the repository's root by default).

    `data_dir` moves the data tree alone (`mgc download --dest`); by default it is
    `root/data`.
    """

    root: Path = Path(".")
    data_dir: Path | None = None

    @property
    def data(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.root / "data"

    def raw(self, dataset: str) -> Path:
        """The unpacked archives of `dataset`."""
        return self.data / "raw" / dataset

    def tracks(self, dataset: str) -> Path:
        """The track table: one row per catalogued file, its status and why."""
        return self.data / "tracks" / f"{dataset}.parquet"

    def split(self, dataset: str) -> Path:
        return self.data / "splits" / f"{dataset}.parquet"

    def fitted(self, model: str) -> Path:
        """What `model` learnt from the training split (its fitted options)."""
        return self.data / "fit" / f"{model}.json"

    def embeddings(self, model: str, dataset: str) -> Path:
        return self.data / "embeddings" / model / f"{dataset}.parquet"

    @property
    def joint_labels(self) -> Path:
        return self.data / "labels" / "joint.parquet"

    @property
    def label_map(self) -> Path:
        return self.data / "labels" / "label_map.json"

    def models(self, train_set: str) -> Path:
        """The model bundles trained on `train_set`, one folder per extractor."""
        return self.root / "models" / train_set

    def run_metrics(self, train_set: str, model: str) -> Path:
        return self.root / "metrics" / "runs" / train_set / f"{model}.json"

    def predictions(self, train_set: str, model: str) -> Path:
        """Every seed's prediction per test track, kept in Git (small) so that `mgc report`
        can pair two experiments' results track by track from their commits."""
        return self.root / "predictions" / train_set / f"{model}.csv"

    def confusion(self, train_set: str, model: str) -> Path:
        return self.root / "plots" / "confusion" / train_set / f"{model}.csv"

    def curves(self, train_set: str, model: str) -> Path:
        """DVCLive's folder for the learning curves of one train stage."""
        return self.root / "plots" / "curves" / train_set / model

    def embedding_map(self, model: str, dataset: str) -> Path:
        """The 2-D map of `model`'s embeddings of `dataset`, for DVC's scatter plot."""
        return self.root / "plots" / "embedding_map" / model / f"{dataset}.csv"

    @property
    def summary_metrics(self) -> Path:
        return self.root / "metrics" / "summary.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def summary_plot(self) -> Path:
        return self.root / "plots" / "summary.png"

