"""Typed configuration from plain mappings (YAML, JSON), checked against the code's own
declarations: a dataclass's fields, or a constructor's keyword parameters.

One generic checker instead of a hand-written one per section means a new field or a new
extractor option is validated the moment it is declared. Every error names the dotted key,
the value and what is allowed, so `dvc exp run -S embed.mfcc.n_ffft=1024` fails in a second
with the valid names, not as a bare TypeError after three stages ran.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from mgc.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A value that is missing, misspelt, of the wrong type or out of range.

    The message starts with the dotted key; `within(prefix)` prepends the enclosing key, so a
    library class can raise with its field name and the caller adds where that field lives.
    """

    def within(self, prefix: str) -> ConfigError:
        return ConfigError(f"{prefix}.{self}" if prefix else str(self))


def invalid(key: str, value: Any, allowed: str) -> ConfigError:
    """`key=value: allowed` as a ConfigError, the one message shape every check uses."""
    return ConfigError(f"{key}={value!r}: {allowed}")


def check_range(key: str, value: float, low: float, high: float) -> None:
    """Refuse a number outside [low, high] (or a non-finite one) naming `key`."""
    if not (math.isfinite(value) and low <= value <= high):
        raise invalid(key, value, f"must be between {low} and {high}")


def _describe(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin in (tuple, list, Sequence):
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             Path: "a path", type(None): "null"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """`value` checked against the type `annotation` and converted to it.

    Understands what configuration files hold: bool, int (an integral float too), float (an
    int too), str, Path, Literal choices, unions, tuples and lists of one type, mappings,
    nested dataclasses, and Any.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, key)
    if origin is Literal:
        if any(type(value) is type(arg) and value == arg for arg in args):
            return value
        raise invalid(key, value, f"allowed values are {', '.join(map(str, args))}")
    if origin in (Union, types.UnionType):
        for arg in args:
            try:
                return coerce(value, arg, key)
            except ConfigError:
                continue
        raise invalid(key, value, f"expected {_describe(annotation)}")
    if origin in (tuple, list, Sequence):
        if not isinstance(value, list | tuple):
            raise invalid(key, value, f"expected {_describe(annotation)}")
        items = [coerce(item, args[0], f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise invalid(key, value, "expected a mapping")
        return {name: coerce(item, args[1], f"{key}.{name}") if args else item
                for name, item in value.items()}
    if annotation is type(None):
        if value is None:
            return None
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation in (int, float):
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
                value) and (annotation is float or float(value).is_integer()):
            return annotation(value)
    elif annotation in (str, Path):
        if isinstance(value, str):
            return annotation(value)
    else:
        raise TypeError(f"{key}: mgc.config cannot check values of type {annotation!r}")
    raise invalid(key, value, f"expected {_describe(annotation)}")


def check_keys(mapping: Any, key: str, allowed: set[str], required: set[str],
               file: str = "the file") -> Mapping:
    """`mapping` itself, once it is a mapping whose keys are all allowed and none missing.

    `key` is the mapping's dotted key, "" for a whole file, which messages then call `file`.
    """
    where = key or file
    if not isinstance(mapping, Mapping):
        raise invalid(where, mapping, "expected a mapping")
    unknown = sorted(str(name) or repr(name) for name in set(mapping) - allowed)
    choices = f"allowed: {', '.join(sorted(allowed))}"
    if len(unknown) == 1:
        raise ConfigError(f"{f'{key}.' if key else ''}{unknown[0]}: unknown key; {choices}")
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}; {choices}")
    missing = sorted(required - set(mapping))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    return mapping


def build(cls: type[T], mapping: Any, key: str, fixed: Mapping[str, Any] | None = None) -> T:
    """An instance of dataclass `cls` from `mapping`: every field present, typed, validated.

    Every field is required, whatever its default: a params file lists every knob, so that
    each can be changed with `dvc exp run -S` (which refuses to add keys). `fixed` gives the
    fields the caller sets itself, which the mapping must not hold. The class's own
    `__post_init__` checks ranges; a ConfigError it raises gets `key` prepended.
    """
    fixed = dict(fixed or {})
    fields = {f.name for f in dataclasses.fields(cls) if f.init} - set(fixed)
    check_keys(mapping, key, fields, fields)
    hints = typing.get_type_hints(cls)
    values = {name: coerce(mapping[name], hints[name], f"{key}.{name}" if key else name)
              for name in fields}
    try:
        return cls(**values, **fixed)
    except ConfigError as error:
        raise error.within(key) from None


def option_parameters(function: Callable[..., Any],
                      exclude: tuple[str, ...] = ()) -> dict[str, inspect.Parameter]:
    """The keyword parameters of `function` that are options (all but self and `exclude`)."""
    return {name: parameter for name, parameter in inspect.signature(function).parameters.items()
            if name not in ("self", *exclude)
            and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)}


def check_options(function: Callable[..., Any], options: Mapping[str, Any], key: str,
                  exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword `options` for `function`, checked against its signature and annotations.

    Parameters with a default are optional, the others required; `exclude` names
    parameters that callers fill in themselves and that are not options. A function that
    takes `**kwargs` accepts any other name too, unchecked.
    """
    hints = typing.get_type_hints(function)
    declared = option_parameters(function, exclude)
    required = {name for name, p in declared.items() if p.default is inspect.Parameter.empty}
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values()):
        check_keys(options, key, set(options) | set(declared), required)
    else:
        check_keys(options, key, set(declared), required)
    return {name: coerce(value, hints.get(name, Any), f"{key}.{name}")
            for name, value in options.items()}
