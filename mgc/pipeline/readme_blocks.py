"""README's tables generated from the committed study results: a block in README.md

    <!-- results/table2/table.md -->
    ...the file's contents...
    <!-- end -->

holds exactly the named file's contents. `render_readme` rewrites every block from its file
(`mgc results readme`, and `mgc sweep NAME --run` after collecting), and `stale_blocks`
names the blocks that differ, which the test suite runs so that README and `results/`
cannot disagree unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r"(?P<open><!-- (?P<path>results/[^\s]+) -->\n)(?P<body>.*?)"
                   r"(?P<close><!-- end -->)", re.DOTALL)


def _content(root: Path, path: str) -> str | None:
    file = root / path
    if not file.is_file():
        return None
    text = file.read_text()
    return text if text.endswith("\n") else text + "\n"


def render_readme(text: str, root: Path = Path(".")) -> str:
    """`text` with every block's body replaced by its file's contents (a block whose file
    does not exist is left as it is: `stale_blocks` reports it)."""
    def replace(match: re.Match[str]) -> str:
        content = _content(root, match["path"])
        body = match["body"] if content is None else content
        return match["open"] + body + match["close"]
    return BLOCK.sub(replace, text)


def stale_blocks(text: str, root: Path = Path(".")) -> list[str]:
    """The files named by blocks whose body is not the file's contents (or that are
    missing), in README order."""
    return [match["path"] for match in BLOCK.finditer(text)
            if _content(root, match["path"]) != match["body"]]


def block_paths(text: str) -> list[str]:
    """Every file a block of `text` quotes, in order."""
    return [match["path"] for match in BLOCK.finditer(text)]
