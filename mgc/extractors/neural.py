"""What the three pretrained extractors share: weights, seeding, device and inference mode.

Each model module supplies one `nn.Module` that maps waveforms (batch, samples) to clip
vectors (batch, dim), front end included, and says how an official weights file loads into
it. This class does the rest the same way for all of them.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from mgc.config import invalid
from mgc.extractors.base import Extractor
from mgc.extractors.weights import WeightFile, resolve_weights
from mgc.layers import ALL, LAST

Pooling = Literal["mean+max", "mean"]
POOLINGS: tuple[str, ...] = get_args(Pooling)
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
FP32 = "fp32"


@contextmanager
def reduced_precision(device: torch.device, precision: str) -> Iterator[None]:
    """`precision: bf16`: the network's convolutions and matrix products in bfloat16
    (torch.autocast; oneDNN's AVX-512 BF16 kernels on CPU), the front ends kept in float32
    (frontend.py); `fp32` changes nothing."""
    if precision == FP32:
        yield
        return
    with torch.autocast(device.type, dtype=torch.bfloat16):
        yield


def precision_metadata(precision: str) -> dict[str, str]:
    """`precision` for an embedding file's metadata: absent for fp32, so a default run's
    files are byte for byte what they were before the option existed."""
    return {} if precision == FP32 else {"precision": precision}


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when present, else CPU; an unavailable device is an error, not a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r}: expected auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine; "
                         "use device: auto or cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: expected auto, cpu, cuda or cuda:N")
    return resolved


@contextmanager
def full_float32(device: torch.device) -> Iterator[None]:
    """Keep CUDA convolutions and matmuls in full float32, not TF32.

    cuDNN's default TF32 moves BYOL-A's embeddings by 8e-4 from the CPU's (1.4e-6 without),
    more than the 1e-4 the extractors are held to against their references; an H100 still
    embeds a 30 s clip in milliseconds. The global flags are restored afterwards.
    """
    if device.type != "cuda":
        yield
        return
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled,
                                        benchmark=torch.backends.cudnn.benchmark,
                                        deterministic=torch.backends.cudnn.deterministic,
                                        allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32


INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                  "xavier_uniform_", "xavier_normal_", "constant_", "zeros_", "ones_")


@contextmanager
def uninitialised() -> Iterator[None]:
    """Layers built inside leave their parameters as allocated (`torch.nn.init` does
    nothing), for a network whose every weight a file is about to replace: memory never
    touched is never resident, so loading holds one copy of the weights, not two."""
    saved = {name: getattr(nn.init, name) for name in INIT_FUNCTIONS}
    for name in INIT_FUNCTIONS:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def return_freed_memory() -> None:
    """Hand the heap pages freed while a model loaded back to the operating system (glibc's
    `malloc_trim`; a no-op elsewhere).

    Loading leaves hundreds of MB freed but mapped (the weights file's tensors, the random
    initial weights they replaced, the float32 weights a frozen graph converted), in pieces
    below glibc's 32 MB mmap threshold; a 30 s clip's feature maps are larger, so they are
    mapped afresh and the peak stacks on top of that garbage (CNN14: 130 MB)."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    gc.collect()
    trim(0)


def pool_over_time(frames: torch.Tensor, pooling: str, dim: int = 1) -> torch.Tensor:
    """Clip vector from per-frame features: max + mean summed (as BYOL-A and PANNs do), or mean."""
    mean = frames.mean(dim=dim)
    if pooling == "mean":
        return mean
    return frames.amax(dim=dim) + mean


def freeze_for_cpu(convolutions: nn.Module, example: torch.Tensor) -> nn.Module:
    """A conv stack frozen for CPU inference with TorchScript's oneDNN passes.

    `torch.jit.freeze` + `optimize_for_inference` keeps activations in oneDNN's blocked
    layout from layer to layer and fuses ReLU and pooling into the convolutions: on this
    project's 2-core benchmark that makes BYOL-A's conv stack 4x and CNN14's 1.4x faster
    than eager PyTorch (benchmarks/extract.py). torch.compile gains less here and needs a
    C++ toolchain at run time, so TorchScript is used despite its deprecation notices,
    which are silenced here only. The traced graph holds no shapes: any clip length runs.

    `convolutions` is consumed: the optimised graph keeps its weights in oneDNN's layout,
    while TorchScript's global compilation unit keeps the traced float32 tensors alive for
    the life of the process (CNN14: 300 MB, the whole cost of a second copy of its
    weights), so their storage is released here once the graph is shown not to read them.
    """
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        for module in convolutions.modules():    # weights read from a file: storage that
            for name, weight in module.named_parameters(recurse=False):  # can be freed
                if not weight.untyped_storage().resizable():
                    setattr(module, name, nn.Parameter(weight.clone(), requires_grad=False))
        traced = torch.jit.trace(convolutions.eval(), example)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    if not any(node.kind() == "prim::Constant" and isinstance(node.output().type(),
                                                               torch.TensorType)
               for node in frozen.graph.nodes()):
        for tensor in (*convolutions.parameters(), *convolutions.buffers()):
            if tensor.untyped_storage().resizable():
                tensor.untyped_storage().resize_(0)
    return frozen


def freeze_in_segments(layers: list[nn.Module], example: torch.Tensor,
                       max_weight_bytes: int) -> nn.Module:
    """`layers` in sequence, frozen for CPU (`freeze_for_cpu`) as consecutive segments of
    at most `max_weight_bytes` of weights each (a larger layer alone).

    `optimize_for_inference` holds two more copies of a graph's weights while it converts
    them to oneDNN's layout: frozen whole, CNN14 peaked 520 MB above its steady state,
    more than the reference path's whole peak allows. In segments, the extra is two copies
    of the largest segment; the activations change layout at each boundary, an exact copy
    of a map that is small by then."""
    segments: list[list[nn.Module]] = [[]]
    size = 0
    for layer in layers:
        layer_bytes = sum(p.numel() * p.element_size() for p in layer.parameters())
        if segments[-1] and size + layer_bytes > max_weight_bytes:
            segments.append([])
            size = 0
        segments[-1].append(layer)
        size += layer_bytes
    frozen = []
    for segment in segments:
        module = nn.Sequential(*segment).eval()
        with torch.no_grad():
            following = module(example)
        frozen.append(freeze_for_cpu(module, example))
        example = following
    return frozen[0] if len(frozen) == 1 else nn.Sequential(*frozen)


def run_blocks(blocks: Iterable[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`blocks` applied in sequence to `x`; every block's output, in order."""
    outputs = []
    for block in blocks:
        x = block(x)
        outputs.append(x)
    return tuple(outputs)


class BlockOutputs(nn.Module):
    """Blocks run in sequence, returning every block's output: traced and frozen, one graph
    that still yields each layer of the forward pass (`layers: all`)."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return run_blocks(self.blocks, x)


def stack_for_inference(blocks: list[nn.Module], all_layers: bool, frozen: bool,
                        example: torch.Tensor) -> nn.Module:
    """The conv blocks as one module for inference: their final output (`layers: last`,
    exactly as before layers existed) or every block's output (`all`); `frozen` for CPU."""
    stack = BlockOutputs(blocks) if all_layers else nn.Sequential(*blocks)
    return freeze_for_cpu(stack, example) if frozen else stack


def fold_batchnorm(conv: nn.Conv2d, batchnorm: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by BatchNorm (in eval mode) as one conv with bias: the same function,
    one pass over the activations fewer. `conv` is left as it was."""
    return fold_batchnorm_into(copy.deepcopy(conv), batchnorm)


def fold_batchnorm_into(conv: nn.Conv2d, batchnorm: nn.BatchNorm2d) -> nn.Conv2d:
    """`fold_batchnorm` in place: `conv` becomes the folded conv (returned). Its weight is
    scaled where it lies, so folding holds no second copy of it (CNN14's largest is 144 MB);
    the arithmetic is torch's `fuse_conv_bn_weights`, to the bit."""
    with torch.no_grad():
        inverse_std = torch.rsqrt(batchnorm.running_var + batchnorm.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(batchnorm.running_mean)
        conv.weight.mul_((batchnorm.weight * inverse_std).reshape(
            -1, *[1] * (conv.weight.dim() - 1)))
        conv.bias = nn.Parameter((bias - batchnorm.running_mean) * inverse_std
                                 * batchnorm.weight + batchnorm.bias)
    return conv


def check_choice(key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Refuse an option value outside `allowed` (for callers that bypass the params check)."""
    if value not in allowed:
        raise invalid(key, value, f"allowed values are {', '.join(map(str, allowed))}")


def in_pieces(run: Callable[[torch.Tensor], Any], x: torch.Tensor, size: int | None) -> Any:
    """`run` on `x` cut along its first axis into pieces of at most `size` (None: whole),
    the outputs (tensors, or tuples or dicts of tensors) joined again: the same function, with the
    activations of one piece alive at a time.

    The conv stacks run this way on CPU: a 30 s clip's first feature maps take 49 MB
    (BYOL-A, CNN14, VGGish's 31 examples alike), so a batch of 8 held hundreds of MB for no
    speed, those layers being memory-bound. A convolution's output for one clip does not
    depend on the others in its batch, so the bytes are the same; the layers after the
    stacks still see the whole batch (MKL's sgemm rounds differently by batch size)."""
    if size is None or len(x) <= size:
        return run(x)
    pieces = [run(piece) for piece in x.split(size)]
    if isinstance(pieces[0], dict):
        return {key: torch.cat([piece[key] for piece in pieces]) for key in pieces[0]}
    if isinstance(pieces[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*pieces, strict=True))
    return torch.cat(pieces)


class ExtractorNetwork(nn.Module):
    """The whole model as one module: waveforms (batch, samples) -> clip vectors (batch, dim),
    front end included."""

    def prepare_inference(self, device: torch.device, all_layers: bool = False,
                          frozen: bool = False) -> None:
        """Make the network fast for inference on `device` once its weights are loaded
        (fold BatchNorm; with `frozen`, the CPU float32 path: conv stacks frozen, linear
        layers through oneDNN); the function it computes must not change. With
        `all_layers`, `forward_layers` must still see every block's output."""

    def forward_layers(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every named layer pooled to clip vectors, in depth order, from one forward pass;
        the last equals `forward`'s output."""
        raise NotImplementedError


class NeuralExtractor(Extractor):
    """An extractor backed by a torch network with pretrained, random or local weights."""

    official_weights: WeightFile

    def __init__(self, *, weights: str | Path, device: str, seed: int, layers: str = LAST,
                 precision: str = FP32, progress: bool = True) -> None:
        check_choice("layers", layers, (LAST, ALL))
        check_choice("precision", precision, PRECISIONS)
        self.precision = precision
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.weights = resolve_weights(weights, self.official_weights, progress=progress)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            with uninitialised() if self.weights.path is not None else nullcontext():
                network = self.build_network()
        if self.weights.path is not None:
            self.load_weights(network, self.weights.path)
        network.eval().prepare_inference(
            self.device, all_layers=layers == ALL,
            frozen=self.device.type == "cpu" and precision == FP32)
        self.network = network.to(self.device)
        return_freed_memory()
        self.layers = self.layer_specs(vars(self)) if layers == ALL else ()

    @abstractmethod
    def build_network(self) -> ExtractorNetwork:
        """The whole model; its `prepare_inference(device)` runs once its weights are loaded."""

    @abstractmethod
    def load_weights(self, network: ExtractorNetwork, path: Path) -> None:
        """Load an official-layout weights file into `network`, or raise WeightsError."""

    def embed_batch(self, waveforms: np.ndarray) -> np.ndarray:
        if self.layers:
            return self.embed_layers_batch(waveforms)[self.layers[-1].name]
        with torch.inference_mode(), full_float32(self.device), \
                reduced_precision(self.device, self.precision):
            batch = torch.from_numpy(np.ascontiguousarray(waveforms)).to(self.device)
            return self.network(batch).float().cpu().numpy()

    def embed_layers_batch(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode(), full_float32(self.device), \
                reduced_precision(self.device, self.precision):
            batch = torch.from_numpy(np.ascontiguousarray(waveforms)).to(self.device)
            return {name: vectors.float().cpu().numpy()
                    for name, vectors in self.network.forward_layers(batch).items()}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights": self.weights.label,
                "weights_sha256": self.weights.sha256,
                "seed": self.seed if self.weights.path is None else None,
                **precision_metadata(self.precision)}
