"""Sweep files: validation, expansion, and the `dvc exp run -S` overrides they become.

The overrides are checked against DVC's own machinery (its Hydra override parser and the
function that applies `-S` to params.yaml), and the repository's sweep files against the
repository's params.yaml, so a sweep that `mgc sweep` accepts is one DVC will run.
"""

from __future__ import annotations

import math
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from dvc.utils.hydra import apply_overrides, to_hydra_overrides
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from mgc.cli import app
from mgc.pipeline.loss_labels import loss_heads, loss_weight_keys, metric_share
from mgc.pipeline.sweeps import (
    SweepError,
    format_override,
    load_sweep,
    parse_sweep,
    sweep_path,
)
from mgc.pipeline.yaml12 import load_yaml12

REPO = Path(__file__).resolve().parents[1]
PARAMS = {
    "data": {"datasets": ["synth_gtzan"], "protocol": "paper",
             "sources": {"gtzan": {"archive": None}}},
    "train": {"seeds": [0, 1], "classifier": {"hidden_layers": 4, "dropout": 0.3},
              "noise": {"mode": "once", "snr_db": 20.0}},
    "loss": {"w_ce": 1.0, "w_contrastive": 0.0},
}


def _repo_params() -> dict[str, Any]:
    return load_yaml12((REPO / "params.yaml").read_text())


def _sweep(experiments: list[Any], **extra: Any) -> dict[str, Any]:
    return {"description": "test sweep", "experiments": experiments, **extra}


def test_grid_expands_to_the_cartesian_product_with_named_points() -> None:
    sweep = parse_sweep(_sweep([{
        "name": "n-{train.noise.mode}-{train.noise.snr_db}",
        "set": {"loss.w_ce": 0.5},
        "grid": {"train.noise.mode": ["once", "every_epoch"], "train.noise.snr_db": [10.0, 30]},
    }], set={"loss.w_ce": 0.9, "loss.w_contrastive": 0.5}), "s", PARAMS)
    assert [e.name for e in sweep.experiments] == [
        "n-once-10", "n-once-30", "n-every_epoch-10", "n-every_epoch-30"]
    assert sweep.experiments[3].overrides == {
        "loss.w_ce": 0.5, "loss.w_contrastive": 0.5,
        "train.noise.mode": "every_epoch", "train.noise.snr_db": 30}


def test_shared_set_applies_to_every_experiment_and_the_experiment_wins() -> None:
    sweep = parse_sweep(_sweep([{"name": "a", "set": {"loss.w_ce": 0.7}}, {"name": "b"}],
                               set={"loss.w_ce": 1.0, "loss.w_contrastive": 0.0}), "s", PARAMS)
    assert [e.overrides for e in sweep.experiments] == [
        {"loss.w_ce": 0.7, "loss.w_contrastive": 0.0},
        {"loss.w_ce": 1.0, "loss.w_contrastive": 0.0}]


@pytest.mark.parametrize(("experiments", "extra", "message"), [
    ([{"name": "a", "set": {"loss.w_cee": 0.5}}], {},
     "unknown params key 'loss.w_cee' (did you mean 'loss.w_ce'?); loss has: w_ce, "
     "w_contrastive"),
    ([{"name": "a", "set": {"train.classifier.depth": 2}}], {}, "'train.classifier.depth'"),
    ([{"name": "a", "set": {"train.seeds.first": 1}}], {}, "train.seeds is not a mapping"),
    ([{"name": "a", "set": {"train.noise": {"mode": "off"}}}], {},
     "'train.noise' is a mapping: set its leaf keys (train.noise.mode, train.noise.snr_db)"),
    ([{"name": "a", "set": {"data.datasets": "gtzan"}}], {}, "holds a list there"),
    ([{"name": "a", "set": {"loss.w_ce": [0.5]}}], {}, "holds a single value there"),
    ([{"name": "a"}], {"set": {"loss.nope": 1}}, "experiment 'a': unknown params key "
     "'loss.nope'"),
    ([{"name": "a"}, {"name": "a"}], {}, "'a' is used twice"),
    ([{"name": "d-{train.classifier.hidden_layers}",
       "grid": {"train.classifier.hidden_layers": [1, 1]}}], {}, "'d-1' is used twice"),
    ([{"name": "d", "grid": {"train.classifier.hidden_layers": [1, 2]}}], {},
     "must contain {train.classifier.hidden_layers}"),
    ([{"name": "d-{loss.w_ce}", "grid": {"train.classifier.hidden_layers": [1]}}], {},
     "placeholder {loss.w_ce} is not a grid key"),
    ([{"name": "d", "set": {"loss.w_ce": 1.0}, "grid": {"loss.w_ce": [0.5]}}], {},
     "loss.w_ce in both set and grid"),
    ([{"name": "d", "grid": {"loss.w_ce": 0.5}}], {}, "grid.loss.w_ce=0.5: expected a non-empty"),
    ([{"name": "bad name"}], {}, "experiment name 'bad name' is not valid"),
    ([{"name": "a..b"}], {}, "experiment name 'a..b' is not valid"),
    ([{"name": "a", "sett": {}}], {}, "unknown key(s) sett; allowed: grid, name, set"),
    ([{"set": {}}], {}, "`name` must be a non-empty string"),
    ([], {}, "`experiments` must be a non-empty list"),
    ([{"name": "a"}], {"grid": {}}, "unknown key(s) grid"),
    ([{"name": "a", "set": {"data.protocol": "it's \"x\""}}], {}, "both quote kinds"),
])
def test_invalid_sweeps_fail_naming_the_problem(experiments: list[Any], extra: dict[str, Any],
                                                message: str) -> None:
    with pytest.raises(SweepError) as error:
        parse_sweep(_sweep(experiments, **extra), "s", PARAMS)
    assert message in str(error.value)


def test_a_sweep_needs_a_description() -> None:
    with pytest.raises(SweepError, match="`description` must say"):
        parse_sweep({"experiments": [{"name": "a"}]}, "s", PARAMS)


def test_yaml12_reads_strings_as_dvc_writes_them() -> None:
    loaded = load_yaml12("a: off\nb: 5e-4\nc: yes\nd: true\ne: 10\nf: 1.5\ng: null\nh: 1_000\n")
    assert loaded == {"a": "off", "b": 5e-4, "c": "yes", "d": True, "e": 10, "f": 1.5,
                      "g": None, "h": "1_000"}


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-./:0123456789 '", min_size=0,
                 max_size=12)
_scalars = (st.booleans() | st.none() | st.integers(-10**12, 10**12)
            | st.floats(allow_nan=False, allow_infinity=False) | _names)


@given(value=_scalars | st.lists(_scalars, max_size=4))
def test_overrides_read_back_as_the_same_value_by_dvc(value: Any) -> None:
    """Hydra's parser (what `dvc exp run -S` uses) reads each formatted value back exactly."""
    [override] = to_hydra_overrides([format_override("train.x", value)])
    parsed = override.value()
    assert override.key_or_group == "train.x"
    assert parsed == value
    assert type(parsed) is type(value)


def test_repository_sweeps_validate_against_params_yaml() -> None:
    params = _repo_params()
    for name in ("table2", "table2-before", "fig2", "paper"):
        sweep = load_sweep(sweep_path(name, REPO / "sweeps"), params)
        assert sweep.experiments and sweep.description


def test_table2_has_the_shape_of_the_papers_table() -> None:
    sweep = load_sweep(REPO / "sweeps" / "table2.yaml", _repo_params())
    counts: dict[str, int] = {}
    for experiment in sweep.experiments:
        assert set(loss_weight_keys()) <= set(experiment.overrides), experiment.name
        weights = [experiment.overrides[key] for key in loss_weight_keys()]
        assert math.isclose(sum(weights), 1.0), experiment.name
        alpha = metric_share(experiment.overrides)
        if "-a" in experiment.name:
            assert math.isclose(alpha, float(experiment.name.split("-a")[1].split("-")[0]))
        heads = experiment.name.split("-")[1]
        counts[heads] = counts.get(heads, 0) + 1
    assert counts == {"ce": 1, "2h": 10, "3h": 15, "4h": 3}
    labels = {e.name: loss_heads(e.overrides) for e in sweep.experiments}
    assert labels["table2-ce-only"] == "CE only"
    assert labels["table2-2h-triplet-a0.3"] == "triplet, 2 heads"
    assert labels["table2-3h-contrastive-a0.3-s0.75"] == (
        "contrastive, 3 heads, CE anchor share 0.75")
    assert labels["table2-4h-triplet-a0.4"] == "triplet, 4 heads, CE anchor share 0.33"
    assert {metric_share(e.overrides) for e in sweep.experiments} >= {0.1, 0.3, 0.5, 0.7, 0.9}


def test_fig2_changes_one_factor_at_a_time() -> None:
    params = _repo_params()
    sweep = load_sweep(REPO / "sweeps" / "fig2.yaml", params)
    shared = {"embed.models", "train.classifiers", "train.seeds"}  # the study's setting
    factors = {}
    for experiment in sweep.experiments:
        assert {k: experiment.overrides[k] for k in shared} == {
            "embed.models": ["mfcc"], "train.classifiers": ["dnn"], "train.seeds": list(range(10))}
        groups = {key.rsplit(".", 1)[0] if key.startswith("train.noise") else key
                  for key in experiment.overrides if key not in shared}
        assert len(groups) <= 1, experiment.name
        for key, value in experiment.overrides.items():
            if key not in shared:
                factors.setdefault(key, set()).add(value)
    classifier = params["train"]["classifier"]
    assert factors["train.classifier.hidden_layers"] | {classifier["hidden_layers"]} == {
        1, 2, 3, 4}
    assert factors["train.classifier.width_multiplier"] == {0.5, 1.5, 2.0}
    assert factors["train.classifier.dropout"] | {classifier["dropout"]} == {0.2, 0.3, 0.4, 0.5}
    assert factors["train.classifier.activation"] | {classifier["activation"]} == {
        "relu", "leaky_relu", "elu", "swish"}
    assert factors["train.classifier.batchnorm"] == {not classifier["batchnorm"]}
    assert factors["train.noise.mode"] == {"off", "once", "every_epoch"}
    assert factors["train.noise.snr_db"] == {10.0, 20.0, 30.0}


def test_sweep_path_lists_the_available_sweeps(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("description: x\n")
    assert sweep_path("one", tmp_path) == tmp_path / "one.yaml"
    with pytest.raises(SweepError, match=r"no file .*two.yaml; available in .*: one"):
        sweep_path("two", tmp_path)


def test_dry_run_prints_queue_commands_that_dvc_applies_to_params(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """Every printed command is `dvc exp run --queue -n NAME -S k=v...`, and DVC's own `-S`
    code applied to a copy of params.yaml gives exactly the sweep's values, read back as
    the stages read them."""
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["sweep", "table2", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("dvc ")]
    expected = load_sweep(REPO / "sweeps" / "table2.yaml", _repo_params()).experiments
    assert len(lines) == len(expected) == 29
    assert result.stdout.strip().endswith("dvc queue start -j 2; mgc report --sweep table2")
    for line, experiment in zip(lines, expected, strict=True):
        words = shlex.split(line)
        assert words[:6] == ["dvc", "exp", "run", "--queue", "-n", experiment.name]
        assert words[6::2] == ["-S"] * len(experiment.overrides)
        copy = tmp_path / "params.yaml"
        shutil.copy(REPO / "params.yaml", copy)
        apply_overrides(copy, words[7::2])
        written = load_yaml12(copy.read_text())
        for key, value in experiment.overrides.items():
            section, *rest = key.split(".")
            node = written[section]
            for part in rest:
                node = node[part]
            assert node == value and type(node) is type(value), (experiment.name, key)


def test_fig2_noise_off_survives_dvcs_params_writer(tmp_path: Path) -> None:
    """DVC writes `mode: off` unquoted; a YAML 1.1 reader would see False."""
    sweep = load_sweep(REPO / "sweeps" / "fig2.yaml", _repo_params())
    [off] = [e for e in sweep.experiments if e.name == "fig2-noise-off"]
    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    apply_overrides(copy, off.set_params())
    assert "mode: off" in copy.read_text()
    assert load_yaml12(copy.read_text())["train"]["noise"]["mode"] == "off"


def test_sweep_command_rejects_an_unknown_key(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "description: x\nexperiments:\n  - {name: a, set: {train.classifer.dropout: 0.2}}\n")
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "bad.yaml"), "--dry-run",
                                      "--params", str(REPO / "params.yaml")])
    assert result.exit_code == 2
    assert "train.classifer.dropout" in result.output
    assert "train.classifier" in result.output


def test_an_extending_sweep_renames_the_base_and_its_set_wins(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "description: base\nset: {loss.w_contrastive: 0.0}\nexperiments:\n"
        "  - {name: ce, set: {loss.w_ce: 1.0}}\n"
        "  - {name: contrastive, set: {loss.w_contrastive: 0.3, loss.w_ce: 0.7}}\n")
    (tmp_path / "again.yaml").write_text(
        "description: again\nextends: base\nprefix: again-\n"
        "set: {loss.w_contrastive: 0.5, train.seeds: [0]}\n")
    sweep = load_sweep(tmp_path / "again.yaml", PARAMS)
    assert [e.name for e in sweep.experiments] == ["again-ce", "again-contrastive"]
    assert sweep.experiments[1].overrides == {"loss.w_contrastive": 0.5, "loss.w_ce": 0.7,
                                              "train.seeds": [0]}
    (tmp_path / "typo.yaml").write_text("description: t\nextends: base\nprefix: t-\n"
                                        "set: {loss.w_contrastiv: 0.5}\n")
    with pytest.raises(SweepError, match="w_contrastiv"):
        load_sweep(tmp_path / "typo.yaml", PARAMS)
    (tmp_path / "chain.yaml").write_text("description: c\nextends: again\nprefix: c-\n")
    with pytest.raises(SweepError, match="extends another"):
        load_sweep(tmp_path / "chain.yaml", PARAMS)
    (tmp_path / "noprefix.yaml").write_text("description: n\nextends: base\n")
    with pytest.raises(SweepError, match="prefix"):
        load_sweep(tmp_path / "noprefix.yaml", PARAMS)


def test_set_flag_overrides_every_experiment_last(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["sweep", "table2", "--dry-run", "--set",
                                      "embed.models=[mfcc]", "-S", "loss.margin=2.0"])
    assert result.exit_code == 0, result.output
    lines = [shlex.split(line) for line in result.stdout.splitlines() if line.startswith("dvc ")]
    assert len(lines) == 29
    for words in lines:
        overrides = words[7::2]
        assert {"embed.models=[mfcc]", "loss.margin=2.0"} <= set(overrides)
        assert sum(o.startswith("loss.margin=") for o in overrides) == 1  # replaced, not added
    for flag, message in ((["--set", "loss.w_cee=1"], "w_cee"),
                          (["--set", "novalue"], "KEY=VALUE")):
        bad = CliRunner().invoke(app, ["sweep", "table2", "--dry-run", *flag])
        assert bad.exit_code == 2 and message in bad.output and "--set" in bad.output


def test_layers_sweep_probes_every_layer_of_every_neural_extractor_and_weighted() -> None:
    from mgc import extractors

    sweep = load_sweep(sweep_path("layers", REPO / "sweeps"), _repo_params())
    expected = {}
    for model in ("byola", "panns", "vggish"):
        names = [spec.name for spec in extractors.REGISTRY[model].layer_specs({})]
        for layer in (*names, "weighted"):
            expected[f"layers-{model}-{layer}"] = {
                "train.seeds": [0, 1, 2], "embed.models": [model],
                f"embed.{model}.layers": "all", "train.layer": layer}
    assert {e.name: e.overrides for e in sweep.experiments} == expected
    assert len(sweep.experiments) == 5 + 8 + 8
