"""benchmarks/bench_conv_arithmetic.py compares like with like: each variant computes the float32 convolution it is
timed against, and the script runs on a slice made here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from bench_conv_arithmetic import affine_quantization, im2col_convolution, int8_convolution  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # torch deprecates them; measured anyway
ENGINES = [engine for engine in torch.backends.quantized.supported_engines if engine not in ("none", "qnnpack")]


def a_convolution() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input, weight and bias of the fast path's kind: a batch of small regions, 3x3 kernels, small weights."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, 12, 12, generator=generator)
    return x, torch.randn(32, 16, 3, 3, generator=generator) * 0.05, torch.randn(32, generator=generator)


def test_im2col_is_the_convolution():
    x, weight, bias = a_convolution()
    torch.testing.assert_close(im2col_convolution(x, weight, bias), F.conv2d(x, weight, bias), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
def test_int8_is_the_convolution_to_a_few_output_steps(engine):
    x, weight, bias = a_convolution()
    expected = F.conv2d(x, weight, bias)
    output_step, _ = affine_quantization(expected, 255)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        with_conversions, _ = int8_convolution(x, weight, bias)
        error = (with_conversions() - expected).abs().max().item()
    finally:
        torch.backends.quantized.engine = previous
    assert error <= 3 * output_step, f"{engine}: largest error {error:.3f}, {error / output_step:.1f} output steps"


def test_script_on_a_kept_slice(tmp_path, make_brain_slice):
    image, brain, _ = make_brain_slice(64)
    np.savez_compressed(tmp_path / "slice.npz", image=image, brain=brain)
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_conv_arithmetic.py"), "--threads", "1", "--kept", str(tmp_path / "slice.npz")],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["convolution_calls"] > 0 and 0 < result["profiled_convolution_ms"] <= result["profiled_slice_ms"]
    expected = {"float32", "im2col"} | {f"int8 {engine}{part}" for engine in ENGINES for part in ("", "_core")}
    assert set(result["variants_ms"]) == expected
    assert result["speedup_over_float32"]["float32"] == 1.0
