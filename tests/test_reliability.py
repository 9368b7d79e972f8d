"""docs/RELIABILITY.md stays true: every test its tables cite exists, every table row cites
one, and every test of the reliability modules is cited."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "RELIABILITY.md"
TEST_ID = re.compile(r"tests/(test_\w+\.py)::(test_\w+)")
RELIABILITY_MODULES = ("test_audio_properties.py", "test_params_properties.py",
                       "test_faults.py", "test_security.py")


def _table_rows() -> list[str]:
    """Body rows of the doc's Markdown tables (header and separator rows left out)."""
    lines = DOC.read_text().splitlines()
    rows = []
    for index, line in enumerate(lines):
        is_row = line.startswith("|") and not re.fullmatch(r"\|[-| ]+\|", line)
        is_header = index + 1 < len(lines) and re.fullmatch(r"\|[-| ]+\|", lines[index + 1])
        if is_row and not is_header:
            rows.append(line)
    return rows


def _test_functions(file_name: str) -> set[str]:
    tree = ast.parse((REPO / "tests" / file_name).read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_table_row_cites_a_test() -> None:
    rows = _table_rows()
    assert len(rows) >= 30
    assert [row for row in rows if not TEST_ID.search(row)] == []


def test_every_cited_test_exists() -> None:
    cited = set(TEST_ID.findall(DOC.read_text()))
    missing = sorted(f"tests/{file}::{name}" for file, name in cited
                     if not (REPO / "tests" / file).exists() or name not in _test_functions(file))
    assert missing == []


def test_every_reliability_test_is_cited() -> None:
    cited = set(TEST_ID.findall(DOC.read_text()))
    uncited = sorted(f"tests/{file}::{name}" for file in RELIABILITY_MODULES
                     for name in _test_functions(file) if (file, name) not in cited)
    assert uncited == []
