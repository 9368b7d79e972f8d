"""Registry of embedding extractors: adding a model is adding one module to this package.

Every module here is imported below, and each `Extractor` subclass that sets a `name`
registers itself (`base.REGISTRY`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from mgc.config import ConfigError
from mgc.extractors.base import NOT_OPTIONS, REGISTRY, Extractor

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def load(name: str, weights: str | None = None, **options: Any) -> Extractor:
    """Build the extractor `name` with `weights` ("pretrained", "random" or a file path;
    None: the model's default, "pretrained" for the neural ones and "none" for MFCC).

    A bad option is a ConfigError naming `<name>.<option>`, and the valid options where the
    name is wrong. `progress` (download progress bars) is passed through unchecked.
    """
    extractor_class = REGISTRY.get_class(name)
    runtime = {key: options.pop(key) for key in NOT_OPTIONS if key in options}
    if weights is not None:
        options["weights"] = weights
    checked = extractor_class.check_options(options, name)
    try:
        extractor = extractor_class(**checked, **runtime)
    except ConfigError as error:
        raise error.within(name) from None
    for attribute in ("sample_rate", "dim"):
        value = getattr(extractor, attribute, None)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TypeError(f"extractor {name!r} set {attribute}={value!r} in its constructor; "
                            "the interface needs a positive integer")
    return extractor


__all__ = ["REGISTRY", "Extractor", "load"]
