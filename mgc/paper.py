"""The numbers the paper reports (test accuracy, %), to print beside ours.

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
