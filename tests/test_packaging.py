"""The package metadata a new user's install reads: a licence setuptools accepts without a
deprecation warning (an SPDX expression and the licence file it names)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_licence_is_an_spdx_expression_with_its_file() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert [(REPO / name).read_text().splitlines()[0] for name in project["license-files"]] \
        == ["MIT License"]
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    assert "setuptools>=77" in build["requires"]   # the first to read PEP 639's license fields
