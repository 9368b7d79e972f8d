"""mgc.pipeline.params: the repository's params.yaml parses; every bad value names its key
and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mgc.pipeline.params import ParamsError, load_params, parse_params

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(REPO_PARAMS.read_text())


def _node(mapping: dict[str, Any], dotted: str) -> dict[str, Any]:
    for key in dotted.split(".") if dotted else []:
        mapping = mapping[key]
    return mapping


def _with(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `raw` with `dotted` set to `value` (as `dvc exp run -S dotted=value` would)."""
    changed = copy.deepcopy(raw)
    parent, _, last = dotted.rpartition(".")
    _node(changed, parent)[last] = value
    return changed


def _without(raw: dict[str, Any], dotted: str) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    parent, _, last = dotted.rpartition(".")
    del _node(changed, parent)[last]
    return changed


def test_repository_params_parse(raw: dict[str, Any]) -> None:
    params = load_params(REPO_PARAMS)
    assert params.data.datasets == tuple(raw["data"]["datasets"])
    assert params.data.protocol == raw["data"]["protocol"]
    assert params.data.seed == raw["data"]["seed"]
    assert params.embed.models == tuple(raw["embed"]["models"])
    for model in params.embed.models:
        assert params.embed[model].clip == raw["embed"][model]["clip"]
        assert params.embed[model].batch_size == raw["embed"][model]["batch_size"]
    assert set(params.data.sources) == set(raw["data"]["sources"])
    assert params.train.sets == tuple(raw["train"]["sets"])
    assert params.train.seeds == tuple(raw["train"]["seeds"])
    assert params.train.classifier.hidden_layers == raw["train"]["classifier"]["hidden_layers"]
    assert params.train.classifier.dropout == raw["train"]["classifier"]["dropout"]
    assert params.train.training.epochs == raw["train"]["epochs"]
    assert params.train.training.noise.snr_db == raw["train"]["noise"]["snr_db"]
    assert params.loss.weight("w_ce") == raw["loss"]["w_ce"]
    assert params.train.adaptation.method == raw["train"]["domain"] == "none"
    assert params.train.adaptation.weight == raw["train"]["domain_weight"]
    assert params.embed.engine == raw["embed"]["engine"] == "local"
    assert params.embed.ray.workers == raw["embed"]["ray"]["workers"]
    assert params.embed.ray.address is raw["embed"]["ray"]["address"] is None


@pytest.mark.parametrize(
    ("dotted", "value", "names"),
    [
        ("data.protocol", "random", ["data.protocol", "paper", "standard"]),
        ("data.datasets", ["synth_gtzan", "gtzan2"],
         ["data.datasets", "gtzan2", "fma_small", "gtzan", "synth_fma", "synth_gtzan"]),
        ("data.datasets", [], ["data.datasets"]),
        ("data.test_fraction", 0.9, ["data.test_fraction", "0.5"]),
        ("data.seed", "forty-two", ["data.seed"]),
        ("embed.models", ["mfcc", "wav2vec"], ["embed.models", "wav2vec", "mfcc"]),
        ("embed.mfcc.clip", "middle", ["embed.mfcc.clip", "full", "first_10s"]),
        ("embed.mfcc.batch_size", 0, ["embed.mfcc.batch_size"]),
        ("merge.strategy", "union", ["merge.strategy", "disjoint", "canonical"]),
        ("train.classifiers", ["dnn", "svm"], ["train.classifiers", "svm", "dnn", "linear"]),
        ("train.seeds", [0, 1.5], ["train.seeds"]),
        ("train.classifier.dropout", 1.5, ["train.classifier.dropout", "[0, 1)"]),
        ("train.classifier.activation", "tanh",
         ["train.classifier.activation", "relu", "leaky_relu", "elu", "swish"]),
        ("train.classifier.hidden_layers", 6, ["train.classifier.hidden_layers", "1 and 4"]),
        ("train.classifier.metric_head", "stacked",
         ["train.classifier.metric_head", "projection", "shared"]),
        ("train.noise.mode", "sometimes", ["train.noise.mode", "off", "once", "every_epoch"]),
        ("train.epochs", 0, ["train.epochs"]),
        ("train.learning_rate", -1.0, ["train.learning_rate", "> 0"]),
        ("train.domain", "mmd",
         ["train.domain", "none", "standardise", "coral", "adversarial"]),
        ("train.domain_weight", -0.5, ["train.domain_weight", ">= 0"]),
        ("loss.w_ce", -0.5, ["loss.w_ce"]),
        ("loss.w_contrastive", -1.0, ["loss.w_contrastive"]),
        ("loss.triplet_mining", "hardest", ["loss.triplet_mining", "random", "semi_hard"]),
        ("embed.byola.pooling", "max", ["embed.byola.pooling", "mean+max", "mean"]),
        ("embed.byola.variant", "v3", ["embed.byola.variant", "v2", "v1_d512"]),
        ("embed.byola.normalisation", "speech", ["embed.byola.normalisation", "paper", "train"]),
        ("embed.vggish.postprocess", "yes", ["embed.vggish.postprocess", "true or false"]),
        ("embed.mfcc.n_fft", "big", ["embed.mfcc.n_fft", "an integer"]),
        ("data.sources.synth_gtzan.clips_per_genre", 2.5,
         ["data.sources.synth_gtzan.clips_per_genre", "an integer"]),
        ("data.sources.gtzan.archive", 7, ["data.sources.gtzan.archive", "a string"]),
        ("embed.engine", "dask", ["embed.engine", "'dask'", "local, ray"]),
        ("embed.ray.workers", 0, ["embed.ray.workers", "between 1 and 4096"]),
        ("embed.ray.workers", 2.5, ["embed.ray.workers", "an integer"]),
        ("embed.ray.audio", "nfs", ["embed.ray.audio", "'nfs'", "bytes, paths"]),
        ("embed.ray.address", 6379, ["embed.ray.address", "a string or null"]),
        ("embed.ray.address", " ", ["embed.ray.address", "auto, host:port or ray://host:port"]),
        ("embed.ray.cpus_per_worker", "two", ["embed.ray.cpus_per_worker", "a number"]),
        ("embed.ray.gpus_per_worker", -1, ["embed.ray.gpus_per_worker", "between 0.0 and 64"]),
        ("embed.ray.clips_per_task", 0, ["embed.ray.clips_per_task", "between 1"]),
    ],
)
def test_bad_value_names_key_and_allowed_values(raw: dict[str, Any], dotted: str, value: Any,
                                                names: list[str]) -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params(_with(raw, dotted, value))
    for name in names:
        assert name in str(caught.value), f"{name!r} not in {caught.value}"


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("train.epochs", 2.5),
        ("train.epochs", "ten"),
        ("train.batch_size", "64"),
        ("train.learning_rate", "fast"),
        ("train.patience", True),
        ("train.classifier.hidden_layers", 2.5),
        ("train.classifier.dropout", "0.3"),
        ("train.classifier.width_multiplier", None),
        ("train.classifier.batchnorm", "yes"),
        ("train.noise.snr_db", "loud"),
        ("train.domain_weight", "strong"),
        ("train.domain", 3),
        ("loss.margin", "one"),
        ("loss.w_ce", None),
    ],
)
def test_wrongly_typed_value_names_its_key(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """`-S train.epochs=2.5` must fail here, not as a TypeError an hour into training."""
    with pytest.raises(ParamsError, match=rf"{dotted.replace('.', '[.]')}="):
        parse_params(_with(raw, dotted, value))


@pytest.mark.parametrize("dotted", ["data.shuffle", "train.classifier.depth", "loss.w_focal",
                                    "train.noise.std", "embed.ray.num_workers"])
def test_unknown_key_is_named_with_the_allowed_keys(raw: dict[str, Any], dotted: str) -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params(_with(raw, dotted, 1))
    assert dotted in str(caught.value)
    for key in _node(raw, dotted.rpartition(".")[0]):
        assert key in str(caught.value)


@pytest.mark.parametrize(("dotted", "allowed"), [
    ("embed.mfcc.n_ffft", ["batch_size", "clip", "hop_length", "n_fft", "n_mels", "n_mfcc",
                           "sample_rate", "weights"]),
    ("embed.byola.normalization", ["normalisation", "pooling", "variant", "weights", "seed"]),
    ("data.sources.synth_fma.clip_secs", ["clip_seconds", "clips_per_genre", "corrupt_tracks"]),
    ("data.sources.fma_small.metadata", ["archive", "metadata_archive", "metadata_urls"]),
])
def test_misspelt_option_names_the_key_and_every_valid_one(raw: dict[str, Any], dotted: str,
                                                           allowed: list[str]) -> None:
    """An extractor's or dataset's options are its constructor's: a typo fails at parse time,
    before any stage runs, listing what is declared."""
    with pytest.raises(ParamsError) as caught:
        parse_params(_with(raw, dotted, 1))
    message = str(caught.value)
    assert message.startswith(f"{dotted}: unknown key")
    for name in allowed:
        assert name in message


@pytest.mark.parametrize(("dotted", "value", "names"), [
    ("embed.mfcc.weights", "pretrained", ["embed.mfcc.weights='pretrained'", "no weights"]),
    ("data.sources.synth_gtzan.clips_per_genre", 3,
     ["data.sources.synth_gtzan.clips_per_genre=3", "at least 5"]),
])
def test_values_the_constructor_refuses_name_their_key(raw: dict[str, Any], dotted: str,
                                                      value: Any, names: list[str]) -> None:
    """Range checks that live in the extractor or dataset itself reach the user with the
    full dotted key, from the stage that builds it."""
    from mgc.pipeline.corpus import source_dataset
    from mgc.pipeline.embedding import load_extractor

    params = parse_params(_with(raw, dotted, value))
    with pytest.raises(ValueError) as caught:
        if dotted.startswith("embed."):
            load_extractor("mfcc", params.embed["mfcc"].options)
        else:
            source_dataset(params, "synth_gtzan")
    for name in names:
        assert name in str(caught.value)


def test_unknown_top_level_section(raw: dict[str, Any]) -> None:
    with pytest.raises(ParamsError, match=r"plots.*allowed: data, embed, loss, merge, train"):
        parse_params({**raw, "plots": {}})


def test_missing_key_is_named(raw: dict[str, Any]) -> None:
    with pytest.raises(ParamsError, match=r"train\.noise.*snr_db"):
        parse_params(_without(raw, "train.noise.snr_db"))


def test_train_set_must_be_a_configured_dataset(raw: dict[str, Any]) -> None:
    changed = _with(raw, "data.datasets", ["synth_gtzan"])
    changed["train"]["sets"] = ["synth_gtzan", "synth_fma", "joint"]
    with pytest.raises(ParamsError) as caught:
        parse_params(changed)
    message = str(caught.value)
    assert "train.sets" in message and "'synth_fma'" in message
    assert "synth_gtzan" in message and "joint" in message


def test_sources_for_unknown_dataset(raw: dict[str, Any]) -> None:
    with pytest.raises(ParamsError, match=r"data\.sources.*'gtzan3'"):
        parse_params(_with(raw, "data.sources.gtzan3", {"archive": None}))


def test_model_without_settings_block(raw: dict[str, Any]) -> None:
    changed = copy.deepcopy(raw)
    del changed["embed"]["mfcc"]
    with pytest.raises(ParamsError, match=r"embed\.mfcc"):
        parse_params(changed)


def test_overrides_reach_the_typed_objects(raw: dict[str, Any]) -> None:
    changed = _with(raw, "loss.w_contrastive", 0.3)
    changed = _with(changed, "train.noise.mode", "every_epoch")
    changed = _with(changed, "train.classifier.width_multiplier", 1.5)
    params = parse_params(changed)
    assert params.loss.weight("w_contrastive") == 0.3
    assert params.train.training.noise.mode == "every_epoch"
    assert params.train.classifier.widths == (384, 192, 96, 48)


def test_exponent_floats_read_as_dvc_writes_them(raw: dict[str, Any], tmp_path: Path) -> None:
    """`dvc exp run -S train.learning_rate=5e-4` leaves `learning_rate: 5e-4` in params.yaml."""
    text = yaml.safe_dump(raw, sort_keys=False)
    assert "learning_rate: 0.0005" in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("learning_rate: 0.0005", "learning_rate: 5e-4")
                    .replace("snr_db: 20.0", "snr_db: 1.5E+1"))
    params = load_params(path)
    assert params.train.training.learning_rate == 5e-4
    assert params.train.training.noise.snr_db == 15.0


def test_integral_floats_become_integers(raw: dict[str, Any]) -> None:
    params = parse_params(_with(_with(raw, "train.epochs", 20.0), "train.classifier.hidden_layers",
                                2.0))
    assert params.train.training.epochs == 20 and isinstance(params.train.training.epochs, int)
    assert params.train.classifier.widths == (256, 128)


def test_noise_mode_off_reads_as_the_word_dvc_writes(tmp_path: Path) -> None:
    """`dvc exp run -S train.noise.mode=off` writes `mode: off` unquoted; YAML 1.1 reads False."""
    text = (Path(__file__).resolve().parents[1] / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("mode: once", "mode: off"))
    assert load_params(path).train.training.noise.mode == "off"


def _layered(raw: dict[str, Any], models: list[str], layer: str) -> dict[str, Any]:
    changed = _with(_with(raw, "embed.models", models), "train.layer", layer)
    for model in models:
        changed = _with(changed, f"embed.{model}.layers", "all")
    return changed


@pytest.mark.parametrize(("models", "layer"), [(["byola"], "conv2"), (["byola"], "stacked"),
                                               (["panns"], "block3"), (["vggish"], "fc1"),
                                               (["byola", "panns", "vggish"], "weighted")])
def test_train_layer_takes_a_layer_of_every_listed_extractor(raw: dict[str, Any],
                                                             models: list[str],
                                                             layer: str) -> None:
    params = parse_params(_layered(raw, models, layer))
    assert params.train.layer == layer
    assert all(params.embed[model].options["layers"] == "all" for model in models)


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: _layered(raw, ["panns"], "conv2"),
     r"train.layer='conv2': not a layer of panns; its layers: block1, .*, fc1 \(or last, "
     r"weighted\)"),
    (lambda raw: _layered(raw, ["byola", "panns"], "conv1"), r"not a layer of panns"),
    (lambda raw: _with(_layered(raw, ["byola"], "conv1"), "embed.byola.layers", "last"),
     r"train.layer='conv1': needs every layer of byola extracted: set "
     r"embed.byola.layers: all"),
    (lambda raw: _with(raw, "train.layer", "weighted"), r"byola.layers: all"),
    (lambda raw: _with(_with(raw, "embed.models", ["mfcc"]), "train.layer", "weighted"),
     r"train.layer='weighted': mfcc has no named layers"),
    (lambda raw: _with(raw, "train.layer", ""), r"train.layer=''"),
    (lambda raw: _with(raw, "embed.mfcc.layers", "all"),
     r"embed.mfcc.layers='all': mfcc emits one vector and has no named layers"),
    (lambda raw: _with(raw, "embed.panns.layers", "every"), r"embed.panns.layers='every'"),
])
def test_train_layer_and_layers_errors_say_what_to_set(raw: dict[str, Any], change,
                                                       message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params(change(raw))


def test_layers_defaults_to_the_last_layer_only(raw: dict[str, Any]) -> None:
    params = parse_params(raw)
    assert params.train.layer == "last"
    assert {params.embed[m].options.get("layers", "last") for m in params.embed.models} == {
        "last"}
    assert parse_params(_with(raw, "embed.mfcc.layers", "last")).embed["mfcc"].options == \
        params.embed["mfcc"].options
