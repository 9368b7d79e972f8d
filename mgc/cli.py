"""The `mgc` command line: the library's tasks for people who are not running the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mgc.datasets import REGISTRY as DATASETS
from mgc.datasets import build_dataset, get_dataset

app = typer.Typer(help="Music genre classification on pretrained audio embeddings.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def download(
    dataset: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(DATASETS))}.")],
    archive: Annotated[Path | None, typer.Option(
        help="Use this local archive instead of downloading (checksum still verified).")] = None,
    dest: Annotated[Path, typer.Option(help="Folder for raw/<dataset> and tracks/<dataset>.parquet.")]
    = Path("data"),
) -> None:
    """Download (or read), verify, unpack and index a dataset, without the pipeline."""
    options = {"archive": str(archive)} if archive else {}
    try:
        chosen = get_dataset(dataset, **options)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    tracks = build_dataset(chosen, dest)
    counts = tracks["status"].value_counts().to_dict()
    typer.echo(f"{dataset}: {len(tracks)} tracks in {dest / 'raw' / dataset}; status {counts}")


if __name__ == "__main__":
    app()
