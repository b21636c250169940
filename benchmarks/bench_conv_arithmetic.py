"""Would cheaper arithmetic speed up the fast localiser's convolutions on this CPU? Prints one JSON object.

    python benchmarks/bench_conv_arithmetic.py --threads 2                    # a validation tumour slice (or a synthetic one)
    python benchmarks/bench_conv_arithmetic.py --threads 2 --kept runs/keep/000_slice13.npz   # a slice kept by bench_localizer

On a CPU the fast path spends most of a slice in convolutions of small regions (a few to a few tens of pixels a
side, 16 to 128 channels, batches of 32 to 256 windows). This records every convolution one slice runs (float32,
through torch.profiler) and times the same shapes again, each the best of five, as:

- ``float32``: ``F.conv2d``, what the fast path runs where bfloat16 is not fast (oneDNN);
- ``int8 <engine>``: a quantized convolution (per-channel int8 weights, 7-bit uint8 input) for every quantized engine
  this torch has, with the input's quantization and the output's dequantization included, since the fast path
  masks and pastes float maps between convolutions; ``..._core`` without them (the most int8 could give);
- ``im2col``: the patches unfolded and one batched matrix product (oneDNN's GEMM instead of its convolution).

Each variant's total is reported with its ratio to float32 (above 1: faster). On a CPU with AVX-512 VNNI the
int8 engines may well win; measure there before dismissing them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_localizer import DATA, real_slices, synthetic_slice

from napari_inpaint_seg.localizer import fast_heatmap, final
from napari_inpaint_seg.models.checkpoint import load_model
from napari_inpaint_seg.pipeline import resolve_polarity

ConvShape = tuple[tuple[int, ...], tuple[int, ...], int]  # input shape, weight shape, calls in the slice


def one_slice(args) -> tuple[np.ndarray, np.ndarray]:
    """(image, brain) of the slice to record: a kept one, the first validation patient's middle tumour slice, or synthetic."""
    if args.kept:
        with np.load(args.kept) as kept:
            return kept["image"], kept["brain"]
    prepared, index, _ = next(iter(real_slices(args.modality, 1) if DATA.is_dir() else synthetic_slice()))
    return prepared.image[:, :, index], prepared.brain[:, :, index]


def recorded_convolutions(args) -> tuple[list[ConvShape], float, float]:
    """The fast path's convolutions on one slice (float32, after one untimed run), with their share of its time."""
    generator, config = load_model(None, args.modality, args.gamma, "cpu")
    image, brain = one_slice(args)
    polarity = resolve_polarity("auto", args.modality)
    run = partial(fast_heatmap, generator, config, image, brain, step=args.step, device="cpu", polarity=polarity, bfloat16=False)
    final(run())
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiled:
        final(run())
    events = profiled.key_averages(group_by_input_shape=True)
    convolutions = [e for e in events if e.key == "aten::mkldnn_convolution"]
    shapes = [(tuple(e.input_shapes[0]), tuple(e.input_shapes[1]), e.count) for e in convolutions]
    convolution_ms = sum(e.cpu_time_total for e in convolutions) / 1e3
    slice_ms = sum(e.self_cpu_time_total for e in events) / 1e3
    return shapes, convolution_ms, slice_ms


def best_of_five(work: Callable[[], object]) -> float:
    """Seconds of the fastest of five runs after one untimed run (the backend picks its kernel on the first)."""
    work()
    times = []
    for _ in range(5):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def im2col_convolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` (unpadded, as every variant here) by unfolded patches and one batched product."""
    n, _, height, width = x.shape
    side = weight.shape[-1]
    patches = F.unfold(x, side)
    out = torch.baddbmm(bias[None, :, None], weight.reshape(1, weight.shape[0], -1).expand(n, -1, -1), patches)
    return out.view(n, weight.shape[0], height - side + 1, width - side + 1)


def affine_quantization(values: torch.Tensor, levels: int) -> tuple[float, int]:
    """(scale, zero point) that spread ``values`` (and 0) over ``levels`` + 1 unsigned steps."""
    low, high = min(values.min().item(), 0.0), max(values.max().item(), 0.0)
    scale = max(high - low, 1e-8) / levels
    return scale, int(round(-low / scale))


def int8_convolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[Callable[[], torch.Tensor], Callable[[], object]]:
    """(with quantize and dequantize, the convolution alone) for the current quantized engine: per-channel int8
    weights, input and output quantized over their own ranges, so that the first returns ``F.conv2d``'s result to
    within a few output steps, as a fast path would need. The input gets 7 bits: without VNNI the u8 x s8 products
    are summed in pairs into int16, which saturates with 8-bit inputs (errors of 15 output steps were seen)."""
    from torch.ao.nn.quantized import Conv2d

    outputs, inputs, side, _ = weight.shape
    layer = Conv2d(inputs, outputs, side)
    scales = weight.abs().amax((1, 2, 3)).clamp_min(1e-8) / 127
    layer.set_weight_bias(torch.quantize_per_channel(weight, scales, torch.zeros(outputs, dtype=torch.long), 0, torch.qint8), bias)
    layer.scale, layer.zero_point = affine_quantization(F.conv2d(x, weight, bias), 255)
    input_scale, input_zero = affine_quantization(x, 127)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    quantized = torch.quantize_per_tensor(channels_last, input_scale, input_zero, torch.quint8)
    return (lambda: layer(torch.quantize_per_tensor(channels_last, input_scale, input_zero, torch.quint8)).dequantize()), (lambda: layer(quantized))


def timed_variants(shapes: list[ConvShape]) -> dict[str, float]:
    """Seconds per variant for all the slice's convolutions (each shape times its calls)."""
    engines = [engine for engine in torch.backends.quantized.supported_engines if engine not in ("none", "qnnpack")]
    totals: dict[str, float] = {}

    def add(name: str, work: Callable[[], object], calls: int) -> None:
        totals[name] = totals.get(name, 0.0) + best_of_five(work) * calls

    generator = torch.Generator().manual_seed(0)
    for input_shape, weight_shape, calls in shapes:
        x = torch.randn(input_shape, generator=generator)
        weight = torch.randn(weight_shape, generator=generator) * 0.05
        bias = torch.randn(weight_shape[0], generator=generator)
        add("float32", partial(F.conv2d, x, weight, bias), calls)
        add("im2col", partial(im2col_convolution, x, weight, bias), calls)
        for engine in engines:
            torch.backends.quantized.engine = engine
            with_conversions, alone = int8_convolution(x, weight, bias)
            add(f"int8 {engine}", with_conversions, calls)
            add(f"int8 {engine}_core", alone, calls)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=["t1", "flair"], default="flair")
    parser.add_argument("--gamma", type=int, default=32)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--kept", type=Path, help="a slice file written by bench_localizer.py --keep (default: a validation slice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes, convolution_ms, slice_ms = recorded_convolutions(args)
    totals = timed_variants(shapes)
    baseline = totals["float32"]
    print(json.dumps({
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
        "convolution_calls": sum(calls for *_, calls in shapes), "profiled_slice_ms": round(slice_ms, 1),
        "profiled_convolution_ms": round(convolution_ms, 1),
        "variants_ms": {name: round(seconds * 1e3, 1) for name, seconds in totals.items()},
        "speedup_over_float32": {name: round(baseline / seconds, 3) for name, seconds in totals.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
