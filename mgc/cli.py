"""The `mgc` command line: the library's tasks for people who are not running the pipeline,
and the output formats they read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mgc.archive import UnsafeArchiveError
from mgc.datasets import REGISTRY as DATASETS
from mgc.datasets import get_dataset
from mgc.download import DownloadError
from mgc.pipeline.layout import JOINT, Layout

if TYPE_CHECKING:
    from mgc.pipeline.sweeps import Sweep
    from mgc.predict import GenrePredictor, Prediction

app = typer.Typer(help="Music genre classification on pretrained audio embeddings.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def download(
    dataset: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(DATASETS))}.")],
    archive: Annotated[Path | None, typer.Option(
        help="Use this local archive instead of downloading (checksum still verified).")] = None,
    metadata_archive: Annotated[Path | None, typer.Option(
        help="FMA datasets only: a local fma_metadata.zip (checksum still verified).")] = None,
    dest: Annotated[Path, typer.Option(
        help="Folder for raw/<dataset> and tracks/<dataset>.parquet.")] = Path("data"),
) -> None:
    """Download (or read), verify, unpack and index a dataset, without the pipeline."""
    if dest.exists() and not dest.is_dir():
        raise typer.BadParameter(f"{dest} is a file, not a folder", param_hint="--dest")
    for flag, given in (("--archive", archive), ("--metadata-archive", metadata_archive)):
        if given is not None and not given.is_file():
            raise typer.BadParameter(f"{given}: no such file", param_hint=flag)
    options = {"archive": str(archive)} if archive else {}
    if metadata_archive:
        options["metadata_archive"] = str(metadata_archive)
    try:
        chosen = get_dataset(dataset, **options)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    from mgc.pipeline.corpus import build_dataset

    try:
        tracks = build_dataset(chosen, Layout(data_dir=dest))
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="--archive/--metadata-archive") from None
    except (DownloadError, UnsafeArchiveError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    counts = tracks["status"].value_counts().to_dict()
    typer.echo(f"{dataset}: {len(tracks)} tracks in {Layout(data_dir=dest).raw(dataset)}; "
               f"status {counts}")


@app.command(help=(
    "Predict the genre of audio files with a trained model bundle, or with no training at "
    "all: --zero-shot --genres \"jazz,blues,rock\" lets CLAP choose among any genres you "
    "name (clips are then CLAP's 10 s windows).\n\n"
    "Each file is decoded at the extractor's sample rate (any rate, mono or stereo) and cut "
    "into clips of the training clip length; a final partial clip counts only if it holds at "
    "least half a clip, and a file shorter than one clip is zero-padded. The clip "
    "probabilities are averaged.\n\n"
    "Files that cannot be read are reported with the reason while the others go on; the exit "
    "status is 1 only if no file could be predicted. A near-silent file (peak under -60 "
    "dBFS) or one under half a clip long is predicted with a warning."))
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
                       "its probability), clips, duration_s, error, warning.")] = False,
    as_csv: Annotated[bool, typer.Option(
        "--csv", help="Print CSV, one row per input and rank: path, rank, genre, probability, "
                      "clips, duration_s, error, warning.")] = False,
    zero_shot: Annotated[bool, typer.Option(
        "--zero-shot", help="No trained bundle: CLAP compares each file with the text prompts "
                            "of --genres (needs mgc[hf]).")] = False,
    genres: Annotated[str | None, typer.Option(
        help='With --zero-shot: the label set, comma-separated, e.g. "jazz,blues,rock".',
        show_default=False)] = None,
    weights: Annotated[str, typer.Option(
        help="With --zero-shot: 'pretrained' (the pinned CLAP snapshot, cached in MGC_CACHE) "
             "or the path of a snapshot folder.")] = "pretrained",
    clap_variant: Annotated[str, typer.Option(
        "--clap", help="With --zero-shot: the CLAP variant, larger_general "
                       "(laion/larger_clap_general) or unfused (laion/clap-htsat-unfused); "
                       "larger_music's text tower is collapsed and is refused.")
    ] = "larger_general",
    domain: Annotated[str | None, typer.Option(
        help="A model trained with train.domain standardise or coral: map the embeddings as "
             "training mapped this dataset's (default: the training dataset; a joint model's "
             "first dataset).", show_default=False)] = None,
) -> None:
    """Genre predictions for `paths` with the bundle `model` (help text in the decorator)."""
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--json/--csv")
    predictor = (_zero_shot_predictor(genres, weights, clap_variant, model) if zero_shot
                 else _bundle_predictor(model, genres, domain))
    predictions = predictor.predict_paths(paths, top_k=top_k)
    formatter = format_json if as_json else format_csv if as_csv else format_table
    typer.echo(formatter(predictions))
    failed = sum(not p.ok for p in predictions)
    if failed:
        typer.echo(f"{failed} of {len(predictions)} inputs could not be predicted", err=True)
    if failed == len(predictions):
        raise typer.Exit(1)


def _bundle_predictor(model: Path | None, genres: str | None,
                      domain: str | None = None) -> GenrePredictor:
    """The predictor of a trained bundle (`--model`, or the only one in models/joint)."""
    # Imported here so `mgc --help` and `mgc download` do not pay for torch and librosa.
    from mgc.predict import GenrePredictor

    if genres is not None:
        raise typer.BadParameter("--genres needs --zero-shot (a bundle knows its genres)",
                                 param_hint="--genres")
    try:
        model_dir = model if model is not None else default_model_dir(Layout().models(JOINT))
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--model") from None
    try:
        predictor = GenrePredictor(model_dir, domain=domain)
    except Exception as error:  # a broken bundle, or the extractor's own (e.g. missing weights)
        typer.echo(f"error: cannot load model {model_dir}: {error}", err=True)
        raise typer.Exit(1) from None
    licence = (f"; its {predictor.info.extractor} weights are licensed "
               f"{predictor.info.weights_licence}" if predictor.info.weights_licence else "")
    typer.echo(f"model {model_dir}: {predictor.info.extractor} embeddings, "
               f"{len(predictor.class_names)} genres{licence}", err=True)
    return predictor


def _zero_shot_predictor(genres: str | None, weights: str, variant: str,
                         model: Path | None) -> GenrePredictor:
    """CLAP's zero-shot predictor over the genres named on the command line."""
    from mgc.predict import ZeroShotPredictor
    from mgc.zeroshot import parse_genres

    if model is not None:
        raise typer.BadParameter("--zero-shot uses no bundle; drop --model", param_hint="--model")
    try:
        names = parse_genres(genres or "")
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--genres") from None
    try:
        predictor = ZeroShotPredictor(names, weights=weights, variant=variant)
    except Exception as error:  # missing mgc[hf], weights not cached offline, a bad folder
        typer.echo(f"error: cannot load CLAP: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"zero-shot CLAP {predictor.extractor.describe()['weights']}: "
               f"{len(names)} genres", err=True)
    return predictor


@app.command(name="init-dataset", help=(
    "Describe your own music as a dataset and print the params to train on it: PATH is a "
    "folder of genre subfolders (the first folder under PATH is the genre; any depth, any "
    "format mgc reads) or a CSV with columns path,label (optional split, artist; paths "
    "relative to the CSV's folder). Lists the classes with their file counts, the labels "
    "merged by case or spaces, look-alike classes that stay apart (hip-hop / hiphop) and "
    "files left out, so you see the classes before anything is trained. Reads no audio "
    "and changes no file."))
def init_dataset(
    path: Annotated[Path, typer.Argument(
        metavar="PATH", show_default=False, help="A folder of genre subfolders, or a .csv.")],
    name: Annotated[str, typer.Option(
        help="The dataset's name in params.yaml (letters, digits, _).")] = "mylib",
    clip_seconds: Annotated[float, typer.Option(
        min=1.0, max=600.0, help="Seconds of each file to embed (from the start).")] = 30.0,
) -> None:
    """Print the params block for a collection of your own (help text in the decorator)."""
    import yaml

    from mgc.datasets.collection import summarise_collection
    from mgc.pipeline.sweeps import format_override
    from mgc.splits import MIN_TRACKS_PER_CLASS

    if not name.isidentifier():
        raise typer.BadParameter(f"{name!r}: use letters, digits and _", param_hint="--name")
    kind = "csv" if path.suffix.lower() == ".csv" else "folder"
    source = {"kind": kind, "path": str(path.expanduser().resolve())}
    if clip_seconds != 30.0:
        source["clip_seconds"] = clip_seconds
    try:
        collection = get_dataset(name, **source)
        summary = summarise_collection(collection)
    except (ValueError, OSError) as error:
        raise typer.BadParameter(str(error), param_hint="PATH") from None
    total = sum(summary.class_counts.values())
    typer.echo(f"{name}: {total} files in {len(summary.class_counts)} classes "
               f"({kind}, {source['path']})")
    width = max((len(label) for label in summary.class_counts), default=0)
    for label, count in summary.class_counts.items():
        low = f"  (fewer than {MIN_TRACKS_PER_CLASS}: cannot be split)" if (
            count < MIN_TRACKS_PER_CLASS) else ""
        typer.echo(f"  {label.ljust(width)}  {count}{low}")
    for label, spellings in summary.label_spellings.items():
        typer.echo(f"note: {', '.join(map(repr, spellings))} are one class, {label!r} "
                   "(case and surrounding spaces are ignored)")
    for group in summary.look_alike:
        typer.echo(f"warning: {' and '.join(map(repr, group))} are {len(group)} classes; "
                   "rename to merge them")
    if summary.unlabelled:
        typer.echo(f"left out: {len(summary.unlabelled)} audio file(s) directly in "
                   f"{source['path']} (no genre folder), e.g. {summary.unlabelled[0].name}")
    block = {"datasets": [name], "sources": {name: source}}
    flow = yaml.safe_dump(source, default_flow_style=True, width=10_000).strip()
    typer.echo("\nIn params.yaml, set (keeping the other sources):\n"
               f"data:\n  datasets: [{name}]\n  sources:\n    {name}: {flow}\n"
               f"train:\n  sets: [{name}]\n")
    typer.echo("or train without editing it:\n  dvc exp run "
               f"-S '{format_override('data.datasets', block['datasets'])}' "
               f"-S '{format_override('train.sets', [name])}' "
               f"-S '+{format_override(f'data.sources.{name}', source)}'\n"
               f"then: mgc predict song.mp3 --model models/{name}/<extractor>")


def _load_sweep_or_fail(name: str, params_file: Path, sweeps_dir: Path,
                        overrides: Sequence[str] = ()) -> Sweep:
    """The sweep `name` with `--set` overrides, validated against `params_file`; a bad one
    is a usage error naming the argument or the flag."""
    from mgc.pipeline.sweeps import SweepError, load_sweep, sweep_path, with_overrides
    from mgc.pipeline.yaml12 import load_yaml12

    try:
        params = load_yaml12(params_file.read_text())
        chosen = load_sweep(sweep_path(name, sweeps_dir), params)
    except (OSError, SweepError) as error:
        raise typer.BadParameter(str(error), param_hint="NAME") from None
    parsed = {}
    for override in overrides:
        key, equals, value = override.partition("=")
        if not equals or not key.strip():
            raise typer.BadParameter(f"{override!r} is not KEY=VALUE", param_hint="--set")
        parsed[key.strip()] = load_yaml12(value) if value.strip() else value
    try:
        return with_overrides(chosen, parsed, params)
    except SweepError as error:
        raise typer.BadParameter(str(error), param_hint="--set") from None


@app.command(help=(
    "Queue a named experiment grid (sweeps/NAME.yaml, or a path to a sweep file) as DVC "
    "experiments: one `dvc exp run --queue -n <name> -S key=value ...` per experiment. "
    "Every key is checked against params.yaml first.\n\n"
    "Queued experiments start from the workspace as it is now (uncommitted changes "
    "included), plus their overrides. Run them with `dvc queue start -j 2` (or --run), "
    "then `mgc report --sweep NAME`."))
def sweep(
    name: Annotated[str, typer.Argument(
        metavar="NAME", show_default=False,
        help="Sweep name (table2, fig2, paper) or the path of a .yaml sweep file.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the dvc commands, queue nothing.")] = False,
    run: Annotated[bool, typer.Option(
        "--run", help="Also start the queue workers and wait until every experiment of the "
                      "sweep has finished or failed.")] = False,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=1, help="Queue workers (experiments run at once) with --run.")] = 2,
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Overwrite existing experiments of the same names.")] = False,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", "-S", metavar="KEY=VALUE",
        help="An override for every experiment, applied last (repeatable), e.g. "
             "--set 'embed.models=[mfcc]'.", show_default=False)] = None,
    params_file: Annotated[Path, typer.Option(
        "--params", help="The params file the keys must exist in.")] = Path("params.yaml"),
    sweeps_dir: Annotated[Path, typer.Option(help="Where named sweeps live.")] = Path("sweeps"),
) -> None:
    """Queue (and with --run, run) the experiments of a sweep (help text in the decorator)."""
    import shlex
    import time

    from mgc.pipeline.dvc_experiments import (
        DONE,
        ExperimentsError,
        exp_show,
        parse_exp_show,
        queue_command,
        queue_experiment,
        start_queue,
        uncommitted_changes,
        wait_for_experiments,
    )
    from mgc.pipeline.studies import study_dir

    if dry_run and run:
        raise typer.BadParameter("choose one of --dry-run and --run", param_hint="--dry-run")
    chosen = _load_sweep_or_fail(name, params_file, sweeps_dir, overrides or [])
    typer.echo(f"sweep {chosen.name}: {len(chosen.experiments)} experiments", err=True)
    if dry_run:
        for experiment in chosen.experiments:
            typer.echo(shlex.join(queue_command(experiment, force)))
        typer.echo(f"# then: dvc queue start -j {jobs}; mgc report --sweep {chosen.name}")
        return
    try:
        existing = {r.name for r in parse_exp_show(exp_show()) if not r.is_baseline}
        clashes = sorted(existing & {e.name for e in chosen.experiments})
        if clashes and not force:
            raise typer.BadParameter(
                f"experiments already exist: {', '.join(clashes)}; use --force to overwrite "
                "them or `dvc exp remove <name>...` first", param_hint="NAME")
        dirty = uncommitted_changes()
        if dirty:
            typer.echo(f"note: the experiments include uncommitted changes to "
                       f"{', '.join(dirty)}", err=True)
        for experiment in chosen.experiments:
            queue_experiment(experiment, force=force)
            typer.echo(f"queued {experiment.name}: {' '.join(experiment.set_params())}")
        if not run:
            typer.echo(f"next: dvc queue start -j {jobs}; then mgc report --sweep {chosen.name}")
            return
        started = time.monotonic()
        start_queue(jobs)
        states = wait_for_experiments([e.name for e in chosen.experiments],
                                      lambda line: typer.echo(line, err=True))
        failed = sorted(n for n, state in states.items() if state != DONE)
        typer.echo(f"sweep {chosen.name}: {len(states) - len(failed)} finished, "
                   f"{len(failed)} not ({', '.join(failed) or 'none'}) in "
                   f"{time.monotonic() - started:.0f} s")
        _write_study(chosen, parse_exp_show(exp_show(all_commits=True)), study_dir(chosen.name))
        if Path("README.md").is_file():
            results_readme(check=False, readme=Path("README.md"))
    except ExperimentsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if failed:
        raise typer.Exit(1)


def _write_study(chosen: Sweep | None, records: list, out: Path) -> None:
    """Collect the experiments into `out` (`mgc.pipeline.studies.collect_study`) and say
    what was written and each group's best DNN."""
    from mgc.pipeline.comparisons import git_predictions
    from mgc.pipeline.experiments_report import own_scores
    from mgc.pipeline.studies import collect_study

    table, unfinished, written = collect_study(records, git_predictions(), out, chosen)
    typer.echo(f"{table['experiment'].nunique() if len(table) else 0} experiments, "
               f"{len(table)} rows; {len(unfinished)} unfinished")
    if len(table):
        table = table.assign(accuracy=own_scores(table)[0])
        for (train_set, model), group in table.groupby(["train_set", "model"], sort=True):
            best = group.loc[group["accuracy"].idxmax()]
            typer.echo(f"  {train_set}/{model}: best DNN accuracy {100 * best['accuracy']:.1f} % "
                       f"({best['experiment']})")
    for path in written:
        typer.echo(f"wrote {path}")


@app.command(help=(
    "Tables and plots of DVC experiments (`dvc exp show --json`): one row per experiment x "
    "train set x extractor with the params that differ between experiments, DNN and linear "
    "accuracy, the paper's number where the row is its configuration; accuracy plots for "
    "each ablation the experiments vary (loss weight share alpha, depth, width, dropout, "
    "activation, batch norm, noise SNR). Writes experiments.md, experiments.csv and "
    "accuracy_vs_*.png to --out."))
def report(
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default: results/NAME with --sweep, else reports).",
        show_default=False)] = None,
    sweep_name: Annotated[str | None, typer.Option(
        "--sweep", help="Only this sweep's experiments (a name in sweeps/ or a .yaml path).",
        show_default=False)] = None,
    from_json: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="Read a saved `dvc exp show --json` document instead of running dvc.",
        show_default=False)] = None,
    params_file: Annotated[Path, typer.Option(
        "--params", help="params.yaml, to check the sweep against.")] = Path("params.yaml"),
    sweeps_dir: Annotated[Path, typer.Option(help="Where named sweeps live.")] = Path("sweeps"),
    all_commits: Annotated[bool, typer.Option(
        "--all-commits", "-A",
        help="Experiments of every commit, not only HEAD's (`dvc exp show -A`).")] = False,
) -> None:
    """Write the experiments report (help text in the decorator)."""
    import json

    from mgc.pipeline.dvc_experiments import ExperimentsError, exp_show, parse_exp_show
    from mgc.pipeline.studies import study_dir

    chosen = _load_sweep_or_fail(sweep_name, params_file, sweeps_dir) if sweep_name else None
    try:
        document = (json.loads(from_json.read_text()) if from_json
                    else exp_show(all_commits=all_commits))
        records = parse_exp_show(document)
    except (ExperimentsError, json.JSONDecodeError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if out is None:
        out = study_dir(chosen.name) if chosen else Path("reports")
    _write_study(chosen, records, out)


results_app = typer.Typer(help="The committed study results, results/<study>/.",
                          no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command(name="readme", help=(
    "Rewrite every results block of README.md (`<!-- results/<study>/<file> -->` ... "
    "`<!-- end -->`) from its file; with --check, change nothing and exit 1 naming the "
    "blocks that differ from results/."))
def results_readme(
    check: Annotated[bool, typer.Option("--check", help="Only compare.")] = False,
    readme: Annotated[Path, typer.Option(help="The README to rewrite.")] = Path("README.md"),
) -> None:
    """Generate README's tables from results/ (help text in the decorator)."""
    from mgc.pipeline.readme_blocks import block_paths, render_readme, stale_blocks

    text = readme.read_text()
    stale = stale_blocks(text, readme.parent)
    if check:
        if stale:
            typer.echo(f"{readme}: out of date with {', '.join(stale)}; run `mgc results "
                       "readme`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{readme}: {len(block_paths(text))} blocks agree with results/")
        return
    readme.write_text(render_readme(text, readme.parent))
    missing = [p for p in stale if not (readme.parent / p).is_file()]
    typer.echo(f"{readme}: {len(stale) - len(missing)} of {len(block_paths(text))} blocks "
               "rewritten" + (f"; no file for {', '.join(missing)}" if missing else ""))


def default_model_dir(models_dir: Path) -> Path:
    """The only model bundle in `models_dir`, or an error naming the choices.

    The joint model knows the widest label space, so it is the natural default; when
    several extractors were trained, picking one silently would hide which model spoke, so
    the user is asked to choose.
    """
    from mgc.bundle import INFO_FILE

    bundles = sorted(p for p in models_dir.glob("*/") if (p / INFO_FILE).is_file())
    if len(bundles) == 1:
        return bundles[0]
    if not bundles:
        raise FileNotFoundError(f"no model bundle in {models_dir}; train one with `dvc repro` "
                                "or pass --model DIR")
    raise ValueError(f"several model bundles in {models_dir}: "
                     f"{', '.join(str(p) for p in bundles)}; choose one with --model DIR")


def printable(text: object) -> str:
    """`text` with every control, format or unpaired-surrogate character escaped (`\\x1b`,
    `\\n`, `\\udcff`), so a file name can neither drive the terminal nor break a row."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape",
                                                        "backslashreplace").decode("ascii")
                   for c in str(text))


def format_table(predictions: Sequence[Prediction]) -> str:
    """A plain-text table: one row per file, its top genres with probabilities, best first,
    and a `warning` column when any file has one (near-silent, too short).

    A failed file's row holds its error instead; it does not widen the genre columns.
    Names and messages are printed with control characters escaped.
    """
    k = max((len(p.genres) for p in predictions), default=0)
    warned = any(p.warning for p in predictions)
    header = ["file", *(f"genre {rank}" for rank in range(1, k + 1)), *(["warning"] * warned)]
    rows = [[printable(p.path), *(printable(f"{g} {prob:.3f}") for g, prob in p.genres),
             *([""] * (k - len(p.genres))), *([printable(p.warning or "")] * warned)] if p.ok
            else [printable(p.path), printable(f"error: {p.error}")] for p in predictions]
    aligned = [header, *(row for row, p in zip(rows, predictions, strict=True) if p.ok)]
    widths = [max(len(row[i]) for row in aligned) for i in range(len(header))]
    widths[0] = max(len(row[0]) for row in [header, *rows])

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i] if i < len(widths) else 0)
                         for i, cell in enumerate(row))

    return "\n".join(line(row).rstrip() for row in [header, *rows])


def format_csv(predictions: Sequence[Prediction]) -> str:
    """Tidy CSV: one row per (file, rank); a failed file is one row with `error` set.
    Control characters in names and messages are escaped as in the table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "rank", "genre", "probability", "clips", "duration_s", "error",
                     "warning"])
    for p in predictions:
        if not p.ok:
            writer.writerow([printable(p.path), "", "", "", 0, 0, printable(p.error), ""])
        for rank, (genre, probability) in enumerate(p.genres, start=1):
            writer.writerow([printable(p.path), rank, printable(genre), f"{probability:.6f}",
                             p.n_clips, f"{p.duration_s:.3f}", "", printable(p.warning or "")])
    return buffer.getvalue().rstrip("\n")


def format_json(predictions: Sequence[Prediction]) -> str:
    """A JSON list of `Prediction.to_dict()` records, in input order (JSON escapes control
    characters itself, and unpaired surrogates from undecodable names as `\\udcXX`)."""
    return json.dumps([p.to_dict() for p in predictions], indent=2)


if __name__ == "__main__":
    app()
