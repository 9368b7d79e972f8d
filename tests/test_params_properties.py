"""Property-based tests of mgc.pipeline.params: any edit of params.yaml parses or names its key.

`dvc exp run -S key=value` and hand edits can put anything anywhere: wrong types,
out-of-range or non-finite numbers, unknown keys, missing keys, nested junk. Whatever the
edit, `parse_params` either returns typed params whose numbers are finite, or raises
`ParamsError` whose message starts with the dotted key at fault (or `params.yaml` for a
missing or unknown top-level section), and that key is the edited one, an ancestor or
descendant of it, or a key that depends on it (`train.sets` on `data.datasets`,
`embed.<model>` on `embed.models`). Any other exception (TypeError, OverflowError, ...)
is a failure. tests/test_params.py holds the hand-picked cases.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from mgc.pipeline.params import Params, ParamsError, parse_params
from tests import hypothesis_profiles  # noqa: F401  (loads the profile)

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
VALID = yaml.safe_load(REPO_PARAMS.read_text())
TOP_LEVEL = "params.yaml"
DEPENDENTS = {"data.datasets": ("train.sets", "data.sources"), "embed.models": ("embed",)}
"""Keys whose allowed values come from another key's value."""

Path_ = tuple[str | int, ...]

words = st.sampled_from(["mfcc", "byola", "panns", "synth_gtzan", "synth_fma", "gtzan",
                         "fma_small", "joint", "paper", "standard", "dnn", "linear",
                         "relu", "once", "off", "full", "first_10s", "disjoint", "canonical",
                         "none", "5e-4", ""])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 300),
                    st.floats(), st.floats(-2, 2), words, st.text(max_size=6))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
new_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)


def _node(mapping: Any, path: Path_) -> Any:
    for part in path:
        mapping = mapping[part]
    return mapping


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every key and list position under `node`, parents before children."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    found = []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def dotted(path: Path_) -> str:
    """The params key a path is under: list positions belong to their list's key."""
    return ".".join(str(part) for part in path if not isinstance(part, int))


@st.composite
def edited_params(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """The repository's params with 1-3 edits, and the dotted keys that were edited."""
    raw = copy.deepcopy(VALID)
    edited = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if kind == "add":
            where = draw(st.sampled_from([(), *(p for p in _paths(raw)
                                                if isinstance(_node(raw, p), dict))]))
            key = draw(new_keys.filter(lambda k, w=where: k not in _node(raw, w)))
            _node(raw, where)[key] = draw(values)
            edited.append(dotted((*where, key)))
            continue
        path = draw(st.sampled_from(_paths(raw)))
        parent = _node(raw, path[:-1])
        if kind == "set":
            parent[path[-1]] = draw(values)
        else:
            del parent[path[-1]]
        edited.append(dotted(path))
    return raw, edited


def _related(key: str, edited: str) -> bool:
    if key == TOP_LEVEL:
        return "." not in edited
    if key == edited or key.startswith(edited + ".") or edited.startswith(key + "."):
        return True
    return any(edited == source or edited.startswith(source + ".")
               for source, dependents in DEPENDENTS.items()
               if any(key == d or key.startswith(d + ".") for d in dependents))


def _finite_numbers(params: Params) -> list[tuple[str, float]]:
    """Every number in the typed params that training will use (not free-form options)."""
    typed = dataclasses.asdict(params)
    del typed["data"]["sources"], typed["embed"]
    found = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for name, child in value.items():
                walk(child, f"{key}.{name}")
        elif isinstance(value, (list, tuple)):
            for child in value:
                walk(child, key)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append((key, value))

    walk(typed, "params")
    return found


def keys_at_start(message: str) -> list[str]:
    """What the message may be naming: each prefix that ends where a key would
    (`key=value`, `key: why`, `key1, key2: why`, `key[2]=value` for a list's item). Keys can
    hold any character, so the caller decides which prefix is a key."""
    return [message[:end] for end, char in enumerate(message) if end and char in "=:, ["]


def check_parse(raw: Any, edited: list[str]) -> None:
    try:
        params = parse_params(raw)
    except ParamsError as error:
        assert any(_related(key, one) for key in keys_at_start(str(error)) for one in edited), (
            f"ParamsError does not start with an edited key or one that depends on it; "
            f"edits {edited}: {error}")
        return
    for key, number in _finite_numbers(params):
        assert math.isfinite(number), f"{key}={number!r} parsed"
    assert all(0 <= seed < 2**32 for seed in params.train.seeds)


@given(edited_params())
@example((VALID, []))
@example(({**VALID, "data": {**VALID["data"], "seed": math.inf}}, ["data.seed"]))
@example(({**VALID, "data": {**VALID["data"], "seed": math.nan}}, ["data.seed"]))
@example(({**VALID, "data": {**VALID["data"], "sources": {"synth_gtzan": 1.5}}},
          ["data.sources.synth_gtzan"]))
@example(({**VALID, "train": {**VALID["train"], "seeds": [2**64]}}, ["train.seeds"]))
@example(({**VALID, "train": {**VALID["train"], "learning_rate": math.inf}},
          ["train.learning_rate"]))
def test_any_edit_parses_or_names_its_key(edit: tuple[dict[str, Any], list[str]]) -> None:
    raw, edited = edit
    check_parse(raw, edited)


@given(values)
def test_a_file_that_is_not_a_params_mapping_is_refused_by_name(raw: Any) -> None:
    try:
        parse_params(raw)
    except ParamsError as error:
        names = {TOP_LEVEL} | ({str(k) or repr(k) for k in raw} if isinstance(raw, dict) else set())
        assert names & set(keys_at_start(str(error))), f"names no key of the file: {error}"
    else:
        raise AssertionError(f"{raw!r} parsed as params")
