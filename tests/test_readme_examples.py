"""README's "one file each" examples run as written: the toy extractor embeds, the toy loss
term joins the multitask sum, the toy dataset is indexed by the shared code.

They run in a fresh interpreter, so the classes they register stay out of this session's
registries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r'''
import json, re, sys, tempfile, zipfile
from pathlib import Path
import numpy as np, pandas as pd, soundfile, torch
from mgc import extractors
from mgc.datasets import get_dataset
from mgc.datasets.base import Dataset
from mgc.extractors.base import Extractor
from mgc.losses import LossConfig, LossTerm, TermBatch, multitask_loss, register_term
from mgc.model import ClassifierConfig, GenreClassifier
from mgc.pipeline.corpus import build_dataset
from mgc.pipeline.layout import Layout

blocks = re.findall(r"```python\n(.*?)```", Path("README.md").read_text(), re.S)[:3]
for block in blocks:
    exec(block, dict(globals()))

vectors = extractors.load("rms").embed(np.random.default_rng(0).normal(size=(3, 16000)))
config = LossConfig(weights={"w_ce": 1.0, "w_centre": 0.5})
model = GenreClassifier(5, 3, ClassifierConfig(hidden_layers=1), heads=config.heads)
values = multitask_loss(model(torch.randn(6, 5)), torch.tensor([0, 1, 2, 0, 1, 2]), config)
root = Path(tempfile.mkdtemp())
with zipfile.ZipFile(root / "my_tracks.zip", "w") as archive:
    for genre in ("jazz", "rock"):
        for index in range(2):
            wav = root / f"{genre}{index}.wav"
            soundfile.write(wav, np.full(16000, 0.1 * (index + 1), np.float32), 16000)
            archive.write(wav, f"my_tracks/{genre}/{genre}{index}.wav")
tracks = build_dataset(get_dataset("my_tracks", archive=str(root / "my_tracks.zip")),
                       Layout(data_dir=root / "data"), progress=False)
print(json.dumps({"blocks": len(blocks), "shape": list(vectors.shape),
                  "terms": sorted(values.by_term), "heads": list(config.heads),
                  "labels": sorted(tracks["label"]), "statuses": sorted(set(tracks["status"]))}))
'''


def test_readme_examples_add_an_extractor_a_loss_and_a_dataset() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {"blocks": 3, "shape": [3, 2], "terms": ["ce", "centre"],
                     "heads": ["anchor", "metric"], "labels": ["jazz", "jazz", "rock", "rock"],
                     "statuses": ["short"]}
