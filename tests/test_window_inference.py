"""The fast path's generator call: per-window recomputation must give the whole-slice pass's values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_inpaint_seg.models.generator import UNetGenerator, erase
from napari_inpaint_seg.models.window_inference import SliceInpainter, folded


def trained_looking_unet(depth: int, downsample: int, seed: int = 0) -> UNetGenerator:
    """Random weights and batch-norm statistics far from the identity, so folding them is really tested."""
    torch.manual_seed(seed)
    generator = UNetGenerator(base_channels=4, depth=depth, downsample=downsample)
    for module in generator.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    generator.head.weight.data.mul_(30)  # spread the sigmoid's output, which is nearly constant at init
    return generator.eval()


def whole_slice_pass(generator: nn.Module, image: torch.Tensor, row: int, col: int, gamma: int) -> torch.Tensor:
    hole = torch.zeros((1, 1) + image.shape)
    hole[..., row : row + gamma, col : col + gamma] = 1
    return generator(erase(image[None, None], hole))[0, 0, row : row + gamma, col : col + gamma]


@pytest.mark.parametrize(
    "depth,downsample,height,width,gamma",
    [
        (3, 2, 96, 64, 32),  # the shipped geometry, smaller slice
        (3, 2, 64, 80, 16),
        (2, 1, 24, 32, 8),
        (1, 2, 20, 24, 6),
        (2, 2, 16, 16, 16),  # the window is the whole slice
    ],
)
def test_per_window_recomputation_equals_the_whole_slice_pass(depth, downsample, height, width, gamma):
    """Random starts (offsets from their anchors mixed: the widest regions), odd ones and those at the slice's
    edges and corners included; then windows of one offset per axis (the tightest regions); to float rounding."""
    generator = trained_looking_unet(depth, downsample)
    image = torch.rand(height, width)
    rows, cols = np.arange(height - gamma + 1), np.arange(width - gamma + 1)
    every = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    mixed = np.concatenate([every[np.random.default_rng(0).permutation(len(every))[:40]], [[0, 0], [height - gamma, width - gamma], [0, width - gamma], [height - gamma, 0]]])
    stride = downsample * 2**depth
    one_offset = every[(every % stride == every[len(every) // 2] % stride).all(axis=1)]
    with torch.inference_mode():
        inpainter = SliceInpainter(generator, image, gamma)
        for starts in (mixed, one_offset):
            expected = torch.stack([whole_slice_pass(generator, image, row, col, gamma) for row, col in starts])
            torch.testing.assert_close(inpainter.predict(starts), expected, atol=1e-5, rtol=1e-5)
            assert expected.std() > 1e-4  # the outputs vary: the comparison is not between two constants


def test_folding_is_cached_and_follows_new_weights():
    generator = trained_looking_unet(2, 1)
    assert folded(generator) is folded(generator)
    assert folded(generator, torch.bfloat16) is folded(generator, torch.bfloat16)
    assert next(folded(generator, torch.bfloat16).parameters()).dtype == torch.bfloat16
    image = torch.rand(24, 24)
    with torch.no_grad():
        before = SliceInpainter(generator, image, 8).predict(np.array([[8, 8]]))
        for parameter in generator.parameters():
            parameter.mul_(0.5)  # e.g. new weights loaded into the same module
        after = SliceInpainter(generator, image, 8).predict(np.array([[8, 8]]))
        torch.testing.assert_close(after[0], whole_slice_pass(generator, image, 8, 8, 8), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before, after)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean += 0.3  # statistics re-estimated: the folded weights change with them
        torch.testing.assert_close(SliceInpainter(generator, image, 8).predict(np.array([[8, 8]]))[0], whole_slice_pass(generator, image, 8, 8, 8),
                                   atol=1e-5, rtol=1e-5)


def test_bfloat16_stays_close_to_float32():
    """The fast path may run G in bfloat16 (8-bit mantissa): its outputs in [0, 1] differ by about 0.01."""
    generator = trained_looking_unet(3, 2)
    image = torch.rand(64, 64)
    starts = np.array([[0, 0], [20, 24], [48, 48]])
    with torch.inference_mode():
        exact = SliceInpainter(generator, image, 16).predict(starts)
        approximate = SliceInpainter(generator, image, 16, torch.bfloat16).predict(starts)
    assert approximate.dtype == torch.float32  # the output layer runs in float32
    assert 0 < (approximate - exact).abs().max() < 0.03


def test_cut_outs_by_index_equal_those_by_slices():
    """The GPU's gather (one indexing kernel) against the CPU's (a slice per window), here both on the CPU."""
    from napari_inpaint_seg.models.window_inference import _gather_by_index, _gather_by_slices

    generator = torch.Generator().manual_seed(0)
    padded = torch.randn(20 + 2 * 3, 24 + 2 * 3, 5, generator=generator)
    anchors = torch.tensor([[0, 0], [4, 8], [16, 20], [19, 22]])  # every cut-out inside the padded map, as the pads ensure
    for box in (((-3, 4), (-2, 5)), ((0, 1), (0, 1)), ((1, 4), (-3, 0))):
        by_index = _gather_by_index(padded, 3, anchors, box)
        torch.testing.assert_close(by_index, _gather_by_slices(padded, 3, anchors, box), rtol=0, atol=0)
        assert by_index.shape == (4, 5, box[0][1] - box[0][0], box[1][1] - box[1][0])
