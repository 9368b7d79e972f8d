"""MuQ's published code (`muq` 0.1.0) run as its README runs it, in a process of its own.

The package is installed without its dependencies by the Makefile into `.venv/muq-reference`
beside transformers 4.57.6 (the encoder API it calls, gone in transformers 5) and
huggingface_hub 0.36 (which transformers 4 needs), with tokenizers 0.22; this script runs
with that folder and this one first on PYTHONPATH (`reference_env` in
benchmarks/references.py). Only two things stand in for what cannot be installed beside
torch 2.13:
- `torchaudio` (no release for torch 2.13): ./torchaudio, the two transforms MuQ uses;
- `muq/__init__.py`, whose other import is MuQ-MuLan (x_clip, which imports torchvision):
  the `muq` package is entered without it, and `muq.muq.muq.MuQ` is the published class.

    python reference.py [--write DIR --config CONFIG.json --seed N]
                        [--load DIR ...] [--waves IN.npz --out OUT.npz]
    python reference.py --serve DIR

`--write` builds `MuQ(MuQConfig(**config))` with seeded weights and random BatchNorm
statistics and saves it with the mixin's `save_pretrained` (config.json, model.safetensors).
Each `--load` folder is read by `MuQ.from_pretrained` and must hold exactly the model's
tensors (the mixin itself loads leniently); every array of IN.npz, (batch, samples), is
embedded with `output_hidden_states=True`, saved as `<load index>/<name>`, (states, batch,
frames, dim). `--serve` loads DIR once and then embeds clips read from stdin (each: its
sample count as 8 little-endian bytes, then float32 samples) as the README does, the last
hidden state averaged over time, answering each with its float32 vector, count first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

from benchmarks.references import randomise_batchnorm


def published_muq() -> type:
    spec = importlib.util.find_spec("muq")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the muq package is not on the path (make installs it into "
                         ".venv/muq-reference)")
    package = types.ModuleType("muq")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["muq"] = package
    from muq.muq.muq import MuQ

    return MuQ


def check_strict(model: torch.nn.Module, folder: Path) -> None:
    from safetensors.torch import load_file

    saved = load_file(folder / "model.safetensors")
    expected = model.state_dict()
    if set(saved) != set(expected):
        raise SystemExit(f"{folder}: missing {sorted(set(expected) - set(saved))[:6]}, "
                         f"unexpected {sorted(set(saved) - set(expected))[:6]}")
    wrong = [name for name, value in saved.items() if value.shape != expected[name].shape]
    if wrong:
        raise SystemExit(f"{folder}: wrong shapes {wrong[:6]}")


def serve(muq_class: type, folder: Path) -> None:
    sink = os.fdopen(os.dup(1), "wb")     # the answers; anything printed goes to stderr
    os.dup2(2, 1)
    model = muq_class.from_pretrained(folder).eval()
    check_strict(model, folder)
    source = sys.stdin.buffer
    while header := source.read(8):
        samples = np.frombuffer(source.read(4 * int.from_bytes(header, "little")), np.float32)
        with torch.no_grad():
            output = model(torch.from_numpy(samples.copy())[None], output_hidden_states=True)
        vector = output.last_hidden_state.mean(dim=1)[0].numpy().astype(np.float32)
        sink.write(len(vector).to_bytes(8, "little") + vector.tobytes())
        sink.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load", type=Path, action="append", default=[])
    parser.add_argument("--waves", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    muq_class = published_muq()
    if args.serve:
        serve(muq_class, args.serve)
        return
    if args.write:
        torch.manual_seed(args.seed)
        model = muq_class(json.loads(args.config.read_text())).eval()
        randomise_batchnorm(model)
        model.save_pretrained(args.write)
    outputs = {}
    waves = dict(np.load(args.waves)) if args.waves else {}
    for index, folder in enumerate(args.load):
        model = muq_class.from_pretrained(folder).eval()
        check_strict(model, folder)
        with torch.no_grad():
            for name, batch in waves.items():
                states = model(torch.from_numpy(batch), output_hidden_states=True).hidden_states
                outputs[f"{index}/{name}"] = torch.stack(states).numpy()
    if args.out:
        np.savez(args.out, **outputs)


if __name__ == "__main__":
    main()
