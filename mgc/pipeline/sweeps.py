"""Named experiment grids (`sweeps/<name>.yaml`): load, validate, expand to experiments.

A sweep file is a description and a list of experiments, each a name and its parameter
overrides (dotted params keys -> values), written in one of two forms:

```yaml
description: what this grid reproduces, and what of it is our reconstruction
set: {loss.w_ce_pair: 0.0}          # optional: overrides shared by every experiment
experiments:
  - name: table2-ce-only            # one experiment
    set: {loss.w_ce: 1.0}
  - name: fig2-depth-{train.classifier.hidden_layers}
    grid:                           # the cartesian product of the lists, one experiment
      train.classifier.hidden_layers: [1, 2, 3]     # per combination; `{key}` in the name
```

An experiment's overrides are the sweep's `set`, then its own `set`, then its grid point
(a key in both its `set` and its `grid` is an error).

A sweep may instead `extends: <other sweep>` with a name `prefix`: every experiment of the
other sweep, renamed `<prefix><name>`, with this sweep's `set` applied last (so it wins):
the same grid under other settings, without copying it (`table2-before` is Table 2 with
the paper's distance and training budget). Values are YAML values (numbers,
booleans, strings, lists); `format_override` writes them in the override grammar that
`dvc exp run -S` reads (Hydra's), e.g. `data.datasets=[gtzan,fma_small]`.

Every key must name an existing leaf of the params mapping the caller passes (params.yaml's
contents): DVC refuses to add keys with `-S`, and a misspelt key would otherwise fail only
when its experiment runs. This module knows nothing of DVC itself.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mgc.calibration import AADesign
from mgc.config import ConfigError, build
from mgc.pipeline.yaml12 import load_yaml12

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_UNQUOTED_STRING = re.compile(r"^[A-Za-z_/][A-Za-z0-9_\-./:]*$")
_HYDRA_KEYWORDS = {"true", "false", "null", "nan", "inf"}
_SWEEP_KEYS = {"description", "set", "experiments", "calibration"}
_EXTENDING_KEYS = {"description", "extends", "prefix", "set"}
_ENTRY_KEYS = {"name", "set", "grid"}


class SweepError(ValueError):
    """A sweep file that cannot be expanded into valid experiments."""


@dataclass(frozen=True)
class SweepExperiment:
    """One experiment: its name (a valid DVC experiment name) and its overrides."""

    name: str
    overrides: dict[str, Any]

    def set_params(self) -> list[str]:
        """The overrides as `key=value` strings for `dvc exp run -S`."""
        return [format_override(key, value) for key, value in self.overrides.items()]


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    experiments: tuple[SweepExperiment, ...]
    calibration: AADesign | None = None
    """An A/A study of the sweep's runs (`mgc.calibration`), when its file has a
    `calibration:` block."""


def format_value(value: Any) -> str:
    """A value in the override grammar of `dvc exp run -S` (Hydra's), read back as the same
    value of the same type: strings that would read as another type are quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        if _UNQUOTED_STRING.match(value) and value.lower() not in _HYDRA_KEYWORDS:
            return value
        if "'" not in value and "\\" not in value:
            return f"'{value}'"
        if '"' not in value and "\\" not in value:
            return f'"{value}"'
        raise SweepError(f"string value {value!r}: cannot hold both quote kinds or a backslash")
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_key(k)}:{format_value(v)}" for k, v in value.items()) + "}"
    raise SweepError(f"value {value!r} ({type(value).__name__}): expected a number, boolean, "
                     "string, null, list or mapping")


def _key(key: Any) -> str:
    if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        raise SweepError(f"mapping key {key!r}: expected an identifier")
    return key


def format_override(key: str, value: Any) -> str:
    """`key=value` for `dvc exp run -S`."""
    return f"{key}={format_value(value)}"


def _name_part(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "+".join(_name_part(item) for item in value)
    return str(value)


def _check_name(name: str, where: str) -> str:
    if (not _NAME.match(name) or ".." in name or name.endswith((".", ".lock"))
            or len(name) > 100):
        raise SweepError(f"{where}: experiment name {name!r} is not valid: use letters, digits, "
                         "'.', '_' and '-' (no '..', not ending in '.' or '.lock', at most 100 "
                         "characters)")
    return name


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SweepError(f"{where}: expected a mapping of dotted params keys to values, "
                         f"got {value!r}")
    return value


def check_key(key: str, value: Any, params: Mapping[str, Any]) -> None:
    """Fail unless `key` is an existing leaf of `params` and `value` keeps its shape.

    A list stays a list and a scalar a scalar; a mapping cannot be replaced whole, since
    `-S` would drop the keys left out of the new one.
    """
    node: Any = params
    for depth, part in enumerate(key.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            prefix = ".".join(key.split(".")[:depth]) or "params"
            choices = sorted(map(str, node)) if isinstance(node, Mapping) else []
            close = difflib.get_close_matches(part, choices, n=1)
            hint = (f" (did you mean {'.'.join([*key.split('.')[:depth], close[0]])!r}?)"
                    if close else "")
            known = (f"; {prefix} has: {', '.join(choices)}" if choices
                     else f"; {prefix} is not a mapping")
            raise SweepError(f"unknown params key {key!r}{hint}{known}")
        node = node[part]
    if isinstance(node, Mapping):
        raise SweepError(f"params key {key!r} is a mapping: set its leaf keys "
                         f"({', '.join(f'{key}.{k}' for k in node)}) instead")
    if isinstance(node, list) != isinstance(value, list):
        shape = "a list" if isinstance(node, list) else "a single value"
        raise SweepError(f"{key}={value!r}: params.yaml holds {shape} there ({node!r})")


def _expand_entry(entry: Any, index: int, shared: dict[str, Any],
                  sweep_name: str) -> list[SweepExperiment]:
    where = f"sweep {sweep_name!r}, experiments[{index}]"
    if not isinstance(entry, dict):
        raise SweepError(f"{where}: expected a mapping with name and set and/or grid, "
                         f"got {entry!r}")
    unknown = sorted(set(map(str, entry)) - _ENTRY_KEYS)
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(_ENTRY_KEYS))}")
    template = entry.get("name")
    if not isinstance(template, str) or not template:
        raise SweepError(f"{where}: `name` must be a non-empty string")
    where = f"sweep {sweep_name!r}, experiment {template!r}"
    fixed = _mapping(entry.get("set"), f"{where}: set")
    grid = _mapping(entry.get("grid"), f"{where}: grid")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: grid.{key}={values!r}: expected a non-empty list of "
                             "values (write a list value as a list of lists)")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise SweepError(f"{where}: {', '.join(both)} in both set and grid")
    placeholders = _PLACEHOLDER.findall(template)
    for placeholder in placeholders:
        if placeholder not in grid:
            raise SweepError(f"{where}: name placeholder {{{placeholder}}} is not a grid key; "
                             f"grid keys: {', '.join(grid) or 'none'}")
    varying = [key for key, values in grid.items() if len(values) > 1]
    missing = [key for key in varying if key not in placeholders]
    if missing:
        raise SweepError(f"{where}: the name must contain {{{missing[0]}}} so that each grid "
                         "point gets its own name")
    experiments = []
    for point in itertools.product(*grid.values()):
        values = dict(zip(grid, point, strict=True))
        name = _PLACEHOLDER.sub(lambda match, at=values: _name_part(at[match.group(1)]),
                                template)
        experiments.append(SweepExperiment(
            name=_check_name(name, where), overrides={**shared, **fixed, **values}))
    return experiments


def parse_sweep(raw: Any, name: str, params: Mapping[str, Any]) -> Sweep:
    """Validate a parsed sweep document against `params` and expand its grids."""
    if not isinstance(raw, dict):
        raise SweepError(f"sweep {name!r}: expected a mapping with description and experiments")
    unknown = sorted(set(map(str, raw)) - _SWEEP_KEYS)
    if unknown:
        raise SweepError(f"sweep {name!r}: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(_SWEEP_KEYS))}")
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise SweepError(f"sweep {name!r}: `description` must say what the sweep reproduces")
    entries = raw.get("experiments")
    if not isinstance(entries, list) or not entries:
        raise SweepError(f"sweep {name!r}: `experiments` must be a non-empty list")
    shared = _mapping(raw.get("set"), f"sweep {name!r}: set")
    experiments = [experiment for index, entry in enumerate(entries)
                   for experiment in _expand_entry(entry, index, shared, name)]
    seen: set[str] = set()
    for experiment in experiments:
        if experiment.name in seen:
            raise SweepError(f"sweep {name!r}: experiment name {experiment.name!r} is used twice")
        seen.add(experiment.name)
        for key, value in experiment.overrides.items():
            try:
                check_key(key, value, params)
                format_value(value)
            except SweepError as error:
                raise SweepError(f"sweep {name!r}, experiment {experiment.name!r}: "
                                 f"{error}") from None
    calibration = None
    if raw.get("calibration") is not None:
        try:
            calibration = build(AADesign, raw["calibration"], "calibration")
        except ConfigError as error:
            raise SweepError(f"sweep {name!r}: {error}") from None
    return Sweep(name=name, description=description.strip(), experiments=tuple(experiments),
                 calibration=calibration)


def sweep_path(name: str, sweeps_dir: Path = Path("sweeps")) -> Path:
    """`sweeps/<name>.yaml` for a sweep name, or the file itself for a path to one."""
    path = Path(name) if Path(name).suffix in (".yaml", ".yml") else sweeps_dir / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in sweeps_dir.glob("*.yaml"))
        raise SweepError(f"sweep {name!r}: no file {path}; available in {sweeps_dir}: "
                         f"{', '.join(available) or 'none'}")
    return path


def _read(path: Path) -> Any:
    try:
        return load_yaml12(Path(path).read_text())
    except yaml.YAMLError as error:
        raise SweepError(f"{path}: not valid YAML: {error}") from None


def extend_sweep(raw: Mapping[str, Any], base: Sweep, name: str,
                 params: Mapping[str, Any]) -> Sweep:
    """`base`'s experiments renamed `<prefix><name>`, with `raw`'s `set` applied last."""
    unknown = sorted(set(map(str, raw)) - _EXTENDING_KEYS)
    if unknown:
        raise SweepError(f"sweep {name!r}: unknown key(s) {', '.join(unknown)}; a sweep that "
                         f"extends another allows {', '.join(sorted(_EXTENDING_KEYS))}")
    description, prefix = raw.get("description"), raw.get("prefix")
    if not isinstance(description, str) or not description.strip():
        raise SweepError(f"sweep {name!r}: `description` must say what the sweep reproduces")
    if not isinstance(prefix, str) or not prefix:
        raise SweepError(f"sweep {name!r}: `prefix` must be a non-empty string, so its "
                         f"experiments do not take the names of {base.name!r}'s")
    renamed = Sweep(name=name, description=description.strip(), experiments=tuple(
        SweepExperiment(_check_name(prefix + e.name, f"sweep {name!r}"), e.overrides)
        for e in base.experiments))
    return with_overrides(renamed, _mapping(raw.get("set"), f"sweep {name!r}: set"), params)


def with_overrides(sweep: Sweep, overrides: Mapping[str, Any],
                   params: Mapping[str, Any]) -> Sweep:
    """`sweep` with `overrides` applied last to every experiment (they win), each key
    checked against `params`: e.g. `mgc sweep table2 --set 'embed.models=[mfcc]'`."""
    for key, value in overrides.items():
        try:
            check_key(key, value, params)
            format_value(value)
        except SweepError as error:
            raise SweepError(f"sweep {sweep.name!r}: {error}") from None
    return Sweep(name=sweep.name, description=sweep.description, experiments=tuple(
        SweepExperiment(e.name, {**e.overrides, **overrides}) for e in sweep.experiments),
        calibration=sweep.calibration)


def load_sweep(path: Path, params: Mapping[str, Any]) -> Sweep:
    """Read, validate (every key against `params`) and expand a sweep file; one that
    `extends` another is read from the same folder (one level: no chains)."""
    raw = _read(path)
    if isinstance(raw, dict) and "extends" in raw:
        base_path = sweep_path(str(raw["extends"]), Path(path).parent)
        base_raw = _read(base_path)
        if isinstance(base_raw, dict) and "extends" in base_raw:
            raise SweepError(f"sweep {Path(path).stem!r} extends {base_path.stem!r}, which "
                             "extends another: extend the original instead")
        base = parse_sweep(base_raw, base_path.stem, params)
        return extend_sweep(raw, base, Path(path).stem, params)
    return parse_sweep(raw, Path(path).stem, params)
