"""Registry of embedding extractors: adding a model is adding one module and one entry here."""

from __future__ import annotations

from typing import Any

from mgc.extractors.base import Extractor
from mgc.extractors.byola import ByolaExtractor
from mgc.extractors.handcrafted import MfccExtractor
from mgc.extractors.panns import PannsExtractor
from mgc.extractors.vggish import VggishExtractor

REGISTRY: dict[str, type[Extractor]] = {
    extractor.name: extractor
    for extractor in (ByolaExtractor, PannsExtractor, VggishExtractor, MfccExtractor)
}


def load(name: str, weights: str = "pretrained", **options: Any) -> Extractor:
    """Build the extractor `name` with `weights` ("pretrained", "random" or a file path).

    The MFCC baseline has no weights and is built with weights="none".
    """
    try:
        extractor_class = REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown extractor {name!r}; available: {', '.join(sorted(REGISTRY))}"
        ) from None
    return extractor_class(weights=weights, **options)


__all__ = ["REGISTRY", "Extractor", "load"]
