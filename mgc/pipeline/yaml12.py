"""YAML read as DVC writes it: YAML 1.2 core-schema scalars.

DVC (ruamel) writes `-S` values by YAML 1.2; PyYAML reads YAML 1.1, where `off` is False and
`5e-4` a string, so `-S train.noise.mode=off` would silently become a boolean.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 core-schema scalars, as DVC (ruamel) and people read them.

    PyYAML implements YAML 1.1, where `off`, `on`, `yes` and `no` are booleans and `5e-4` is
    a string: `train.noise.mode: [off, once]` would silently become `[false, 'once']`.
    """


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                           "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))


def load_yaml12(text: str) -> Any:
    """Parse YAML text with YAML 1.2 core-schema scalars (see `Yaml12Loader`)."""
    return yaml.load(text, Loader=Yaml12Loader)
