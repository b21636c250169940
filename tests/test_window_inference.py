"""The fast path's generator call: decoding only the hole must give the full forward pass's values there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_inpaint_seg.models.generator import UNetGenerator, erase
from napari_inpaint_seg.models.window_inference import folded, predict_centre, predict_hole


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


def full_pass_in_hole(generator: nn.Module, crops: torch.Tensor, first: int, last: int) -> torch.Tensor:
    hole = torch.zeros_like(crops)
    hole[..., first:last, first:last] = 1
    return generator(erase(crops, hole))[:, 0, first:last, first:last]


@pytest.mark.parametrize(
    "depth,downsample,side,first,last",
    [
        (3, 2, 96, 32, 64),  # the shipped gamma = 32 geometry
        (3, 2, 96, 33, 65),  # a hole off the even grid
        (3, 2, 96, 0, 32),  # holes touching the crop's edges: decoded whole where the margin runs out
        (3, 2, 96, 64, 96),
        (2, 1, 24, 8, 16),
        (1, 2, 20, 6, 14),
        (3, 2, 32, 8, 24),  # the crop barely larger than the hole
    ],
)
def test_decoding_only_the_hole_equals_the_full_pass(depth, downsample, side, first, last):
    generator = trained_looking_unet(depth, downsample)
    crops = torch.rand(3, 1, side, side)
    with torch.inference_mode():
        expected = full_pass_in_hole(generator, crops, first, last)
        centre = predict_centre(folded(generator), crops, first, last)
    assert centre.shape == (3, last - first, last - first)
    torch.testing.assert_close(centre, expected, atol=1e-5, rtol=1e-5)
    assert expected.std() > 1e-4  # the outputs vary: the comparison is not between two constants


def test_folding_is_cached_and_follows_new_weights():
    generator = trained_looking_unet(2, 1)
    assert folded(generator) is folded(generator)
    crops = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        before = predict_hole(generator, crops, 8, 16)
        for parameter in generator.parameters():
            parameter.mul_(0.5)  # e.g. new weights loaded into the same module
        after = predict_hole(generator, crops, 8, 16)
        torch.testing.assert_close(after, full_pass_in_hole(generator, crops, 8, 16), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before, after)


def test_any_other_module_gets_a_plain_forward_pass():
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Conv2d(2, 1, 3, padding=1), nn.Sigmoid())
    crops = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(predict_hole(generator, crops, 4, 8), full_pass_in_hole(generator, crops, 4, 8))


def test_bfloat16_stays_close_to_float32():
    """The fast path may run G in bfloat16 (8-bit mantissa): its outputs in [0, 1] differ by about 0.01."""
    generator = trained_looking_unet(3, 2)
    crops = torch.rand(4, 1, 48, 48)
    with torch.inference_mode():
        exact = predict_hole(generator, crops, 16, 32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            approximate = predict_hole(generator, crops, 16, 32).float()
    assert (approximate - exact).abs().max() < 0.03
