"""The fit stage's record (`data/fit/<model>.json`): written by fit, read by extract and
train, which build or describe the extractor with what it learnt."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mgc.atomic import write_json
from mgc.pipeline.layout import Layout

if TYPE_CHECKING:
    from mgc.pipeline.params import Params


def write_fitted(layout: Layout, model: str, fitted_options: dict[str, Any],
                 **provenance: Any) -> dict[str, Any]:
    """Write and return the record: `model`, its `fitted_options` (empty for a model that
    learns nothing, so the record stays constant) and what they were fitted on."""
    record = {"model": model, "fitted_options": fitted_options, **provenance}
    write_json(layout.fitted(model), record)
    return record


def extractor_options(params: Params, model: str, layout: Layout) -> dict[str, Any]:
    """`embed.<model>` options with what the fit stage learnt filled in."""
    fitted = json.loads(layout.fitted(model).read_text())["fitted_options"]
    return {**params.embed[model].options, **fitted}
