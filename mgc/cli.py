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
    dest: Annotated[Path, typer.Option(
        help="Folder for raw/<dataset> and tracks/<dataset>.parquet.")] = Path("data"),
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


@app.command(help=(
    "Predict the genre of audio files with a trained model bundle.\n\n"
    "Each file is decoded at the extractor's sample rate (any rate, mono or stereo) and cut "
    "into clips of the training clip length; a final partial clip counts only if it holds at "
    "least half a clip, and a file shorter than one clip is zero-padded. The clip "
    "probabilities are averaged.\n\n"
    "Files that cannot be read are reported with the reason while the others go on; the exit "
    "status is 1 only if no file could be predicted."))
def predict(
    paths: Annotated[list[Path], typer.Argument(
        metavar="PATH", show_default=False,
        help="Audio files, or folders searched recursively for audio files (wav, flac, ogg, "
             "opus, mp3, au, aiff, caf, w64, rf64).")],
    model: Annotated[Path | None, typer.Option(
        exists=True, file_okay=False,
        help="Model bundle folder written by the train stage, models/<train_set>/<extractor>. "
             "Default: the only bundle in models/joint (with several, you must choose).",
        show_default=False)] = None,
    top_k: Annotated[int, typer.Option(
        min=1, help="Genres to show per file, best first (a number >= the model's class count "
                    "shows all classes).")] = 3,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list, one record per input: path, genres (each genre with "
                       "its probability), clips, duration_s, error.")] = False,
    as_csv: Annotated[bool, typer.Option(
        "--csv", help="Print CSV, one row per input and rank: path, rank, genre, probability, "
                      "clips, duration_s, error.")] = False,
) -> None:
    """Genre predictions for `paths` with the bundle `model` (help text in the decorator)."""
    # Imported here so `mgc --help` and `mgc download` do not pay for torch and librosa.
    from mgc.predict import (
        GenrePredictor,
        default_model_dir,
        format_csv,
        format_json,
        format_table,
    )

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--json/--csv")
    try:
        model_dir = model if model is not None else default_model_dir()
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--model") from None
    try:
        predictor = GenrePredictor(model_dir)
    except Exception as error:  # a broken bundle, or the extractor's own (e.g. missing weights)
        typer.echo(f"error: cannot load model {model_dir}: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"model {model_dir}: {predictor.info.extractor} embeddings, "
               f"{len(predictor.class_names)} genres", err=True)
    predictions = predictor.predict_paths(paths, top_k=top_k)
    formatter = format_json if as_json else format_csv if as_csv else format_table
    typer.echo(formatter(predictions))
    failed = sum(not p.ok for p in predictions)
    if failed:
        typer.echo(f"{failed} of {len(predictions)} inputs could not be predicted", err=True)
    if failed == len(predictions):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
