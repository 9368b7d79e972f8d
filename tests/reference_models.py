"""The reference implementations our extractors are checked against, importable offline.

`panns_inference` runs `wget` for AudioSet's label CSV when first imported and reads it from
`~/panns_data`; pointing HOME at a folder that already holds a 527-row CSV keeps that import
off the network. The benchmarks import these helpers too.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import torch

AUDIOSET_CLASSES = 527


def panns_models() -> ModuleType:
    """`panns_inference.models`, imported with HOME at a temp folder holding the label CSV."""
    if "panns_inference.models" in sys.modules:
        return sys.modules["panns_inference.models"]
    home = Path(tempfile.mkdtemp(prefix="panns-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    labels = home / "panns_data" / "class_labels_indices.csv"
    labels.parent.mkdir(parents=True)
    rows = [f"{i},/m/{i:05d},label {i}" for i in range(AUDIOSET_CLASSES)]
    labels.write_text("index,mid,display_name\n" + "\n".join(rows) + "\n")
    previous = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        import panns_inference.models as models
    finally:
        if previous is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = previous
    return models


def reference_cnn14(seed: int) -> torch.nn.Module:
    """panns_inference's Cnn14 for the 32 kHz checkpoint, seeded, with non-trivial BatchNorm
    statistics so that a BatchNorm applied on the wrong axis shows up in the embeddings."""
    torch.manual_seed(seed)
    model = panns_models().Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                                 fmin=50, fmax=14000, classes_num=AUDIOSET_CLASSES)
    randomise_batchnorm(model)
    return model.eval()


def reference_vggish(seed: int) -> torch.nn.Module:
    """torchvggish's VGG without postprocessing, seeded (its constructor downloads nothing)."""
    from torchvggish.torchvggish import _vgg

    torch.manual_seed(seed)
    return _vgg(postprocess=False).eval()


def randomise_batchnorm(model: torch.nn.Module) -> None:
    """Give every BatchNorm layer random affine parameters and running statistics."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
