"""How a loss setting reads in a table: the metric losses' share of the loss weight
(alpha) and the paper's head configuration it stands for, from dotted params keys
(`loss.w_ce`, ...) and the registry of loss terms (`mgc.losses`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgc.losses import ANCHOR_TERM, TERMS


def loss_weight_keys() -> tuple[str, ...]:
    """The params key of every registered loss term's weight (`loss.w_ce`, ...)."""
    return tuple(f"loss.{key}" for key in TERMS)


def _weights(params: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(params.get(f"loss.{key}") or 0.0) for key in TERMS}


def metric_share(params: Mapping[str, Any]) -> float:
    """alpha: the metric losses' share of the total loss weight (0 for CE only)."""
    weights = _weights(params)
    total = sum(weights.values())
    metric = sum(weight for key, weight in weights.items() if TERMS[key].metric)
    return metric / total if total else 0.0


def loss_heads(params: Mapping[str, Any]) -> str:
    """The paper's head configuration a loss setting stands for, e.g. `contrastive, 3 heads,
    CE anchor share 0.5`: a head per metric term and for the anchor CE, and CE on partners
    counts one head per partner role of the metric terms (a triplet's: positive, negative)."""
    weights = _weights(params)
    active = [TERMS[key] for key, weight in weights.items() if weight > 0]
    metric = [term for term in active if term.metric]
    ce_terms = [term for term in active if not term.metric and term.weight_key != ANCHOR_TERM]
    ce_weight = sum(weights[term.weight_key] for term in ce_terms)
    share = (f", CE anchor share {weights[ANCHOR_TERM] / (weights[ANCHOR_TERM] + ce_weight):.2g}"
             if ce_terms else "")
    if not metric:
        return "CE only" + share
    roles = max(term.partner_roles for term in metric)
    heads = 1 + len(metric) + roles * len(ce_terms)
    return f"{' + '.join(term.name for term in metric)}, {heads} heads{share}"
