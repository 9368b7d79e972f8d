"""The paper's constants: the numbers it reports (test accuracy, %), to print beside ours,
and the protocol and classifier they came from.

From Table 1 and the text of Rai et al.; see PAPER-NOTES for how they were produced
(random 80/20 splits, GTZAN BYOL-A on the first 10 s only, etc.).
"""

from __future__ import annotations

PAPER_ACCURACY_PERCENT: dict[tuple[str, str], float] = {
    ("gtzan", "byola"): 81.5,
    ("gtzan", "vggish"): 79.5,
    ("gtzan", "panns"): 77.0,
    ("fma_small", "byola"): 64.31,
    ("fma_small", "vggish"): 58.04,
}
"""(dataset, extractor) -> the paper's DNN test accuracy in percent."""


def paper_accuracy(dataset: str, extractor: str) -> float | None:
    """The paper's number for a real dataset (synthetic stand-ins map to none)."""
    return PAPER_ACCURACY_PERCENT.get((dataset, extractor))

PAPER_PROTOCOL = "paper"
"""The authors' splits (random stratified 80/20, seed 42; see `mgc.splits.paper_split`)."""

PAPER_WIDTHS = (256, 128, 64, 32)
"""Hidden widths of the paper's DNN, Linear-BN-ReLU-Dropout blocks (PAPER-NOTES)."""

PAPER_CLASSIFIER: dict[str, object] = {
    "hidden_layers": 4, "width_multiplier": 1.0, "dropout": 0.3, "activation": "relu",
    "batchnorm": True,
}
"""The paper's DNN as `ClassifierConfig` fields. Loss weights and noise are not part of it:
the paper does not say which loss configuration or augmentation its headline numbers came
from (its reported GTZAN test model was trained without noise)."""
