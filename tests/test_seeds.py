"""mgc.seeds: every seed's predictions and intervals recorded, k-fold tests each track once,
and worker processes change no byte."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mgc.evaluate import LabelledEmbeddings
from mgc.losses import LossConfig
from mgc.seeds import train_over_folds, train_over_seeds
from mgc.train import NoiseConfig, TrainConfig
from tests.test_train import SMALL, _blobs


def _labelled(n_per_class: int, split: np.ndarray, seed: int = 0) -> LabelledEmbeddings:
    x, y = _blobs(n_per_class, seed=seed)
    return LabelledEmbeddings(x=x, dataset=np.full(len(y), "blobs"),
                              track_id=np.array([f"t{i:03d}" for i in range(len(y))]),
                              label=np.array([f"genre{c}" for c in y]), split=split)


def test_seed_loop_records_predictions_intervals_and_stopping() -> None:
    split = np.array(["train", "train", "train", "val", "test"] * 16)
    data = _labelled(20, split)
    config = TrainConfig(epochs=5, batch_size=16, noise=NoiseConfig("off"))
    result = train_over_seeds(data, {}, ["dnn"], [0, 1], SMALL, LossConfig(),
                                           config)
    accuracy = result.metrics["dnn"]["blobs"]["accuracy"]
    table = result.predictions
    assert list(table["track_id"]) == list(data.track_id[split == "test"])
    correct = (table[["dnn_seed0", "dnn_seed1"]].to_numpy()
               == table[["label"]].to_numpy()).mean(axis=1)
    assert accuracy["mean"] == pytest.approx(correct.mean())  # same tracks, same seeds
    assert accuracy["ci95_low"] <= accuracy["mean"] <= accuracy["ci95_high"]
    assert result.metrics["dnn_training"]["epochs_mean"] <= 5
    assert 0.0 <= result.metrics["dnn_training"]["stopped_early"] <= 1.0


def test_kfold_tests_every_track_once_and_averages_over_folds() -> None:
    folds = np.array([f"fold{k}" for k in range(4)] * 20)
    data = _labelled(20, folds)
    config = TrainConfig(epochs=3, batch_size=16, noise=NoiseConfig("off"))
    result = train_over_folds(data, {}, 4, ["dnn"], [0], SMALL, LossConfig(),
                                           config)
    table = result.predictions
    assert sorted(table["track_id"]) == sorted(data.track_id)
    per_fold = [(table[table["fold"] == k]["dnn_seed0"] == table[table["fold"] == k]["label"])
                .mean() for k in range(4)]
    accuracy = result.metrics["dnn"]["blobs"]["accuracy"]
    assert accuracy["mean"] == pytest.approx(np.mean(per_fold))
    assert accuracy["std"] == pytest.approx(np.std(per_fold))
    assert result.metrics["folds"] == 4 and result.metrics["dnn"]["blobs"]["n_test"] == 80
    assert len(result.confusion) == 80


@pytest.mark.slow
def test_seeds_trained_in_worker_processes_give_the_same_bytes() -> None:
    split = np.array(["train", "train", "train", "val", "test"] * 16)
    data = _labelled(20, split)
    config = TrainConfig(epochs=4, batch_size=16)
    loss = LossConfig(weights={"w_ce": 0.7, "w_contrastive": 0.3})
    inline, pooled = (train_over_seeds(data, {}, ["dnn", "linear"], [0, 1, 2],
                                                    SMALL, loss, config, workers=workers)
                      for workers in (1, 2))
    assert inline.metrics == pooled.metrics
    pd.testing.assert_frame_equal(inline.predictions, pooled.predictions)
    assert inline.history == pooled.history and inline.best_seed == pooled.best_seed
    for key, value in inline.best_model.state_dict().items():
        assert torch.equal(value, pooled.best_model.state_dict()[key]), key
