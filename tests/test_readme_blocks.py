"""README's results blocks: rewritten from their files, a stale or missing one named, and
README.md as committed agreeing with results/ (fast: reads files, trains nothing)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mgc.cli import app
from mgc.pipeline.readme_blocks import block_paths, render_readme, stale_blocks

REPO = Path(__file__).resolve().parents[1]
README = ("# Title\n\nIntro.\n\n<!-- results/t2/table.md -->\nold table\n<!-- end -->\n\n"
          "Reading.\n\n<!-- results/aa/calibration.md -->\n<!-- end -->\n")


def test_blocks_are_rewritten_from_their_files_and_the_rest_is_kept(tmp_path: Path) -> None:
    (tmp_path / "results" / "t2").mkdir(parents=True)
    (tmp_path / "results" / "t2" / "table.md").write_text("| a | b |\n|---|---|\n")
    assert block_paths(README) == ["results/t2/table.md", "results/aa/calibration.md"]
    assert stale_blocks(README, tmp_path) == ["results/t2/table.md", "results/aa/calibration.md"]
    rendered = render_readme(README, tmp_path)
    assert rendered == README.replace("old table\n", "| a | b |\n|---|---|\n")
    assert stale_blocks(rendered, tmp_path) == ["results/aa/calibration.md"]  # no file yet
    (tmp_path / "results" / "aa").mkdir()
    (tmp_path / "results" / "aa" / "calibration.md").write_text("rates")  # no final newline
    assert stale_blocks(render_readme(rendered, tmp_path), tmp_path) == []


def test_results_readme_command_checks_and_rewrites(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    (tmp_path / "results" / "t2").mkdir(parents=True)
    (tmp_path / "results" / "t2" / "table.md").write_text("new\n")
    runner = CliRunner()
    checked = runner.invoke(app, ["results", "readme", "--check", "--readme", str(readme)])
    assert checked.exit_code == 1 and "results/t2/table.md" in checked.output
    written = runner.invoke(app, ["results", "readme", "--readme", str(readme)])
    assert written.exit_code == 0, written.output
    assert "<!-- results/t2/table.md -->\nnew\n<!-- end -->" in readme.read_text()
    assert "no file for results/aa/calibration.md" in written.output


def test_readme_agrees_with_the_committed_results() -> None:
    text = (REPO / "README.md").read_text()
    assert block_paths(text), "README quotes no results/ file"
    assert stale_blocks(text, REPO) == [], "run `mgc results readme` after a study"
