"""The generator's prediction inside one centred hole, computed as cheaply as exactness allows.

The fast localiser only reads G's output inside the erased window, yet a plain forward pass decodes the whole
crop at every UNet level. Here the encoder still sees the whole crop (that is the context), but each decoder
level computes only the pixels the hole's output depends on: unpadded 3x3 convolutions on a cut-out with a
two-pixel margin, the 2x2 transposed convolutions being local. Inside the hole the result equals the full pass
(tested to float rounding). Batch norm is folded into the convolutions, which removes a pass over every
feature map. Together about 1.6x fewer operations per window at gamma = 32 (docs/performance.md).
"""

from __future__ import annotations

import copy
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .generator import ConvBlock, UNetGenerator, erase

_FOLDED: weakref.WeakKeyDictionary[UNetGenerator, UNetGenerator] = weakref.WeakKeyDictionary()


def predict_hole(generator: nn.Module, crops: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """G's output on rows and columns [first, last) of square crops (N, 1, S, S) erased there: (N, L, L).

    A UNetGenerator goes through :func:`predict_centre` with batch norm folded; any other module (the tests'
    small stand-ins) through a plain forward pass.
    """
    if isinstance(generator, UNetGenerator):
        return predict_centre(folded(generator), crops, first, last)
    hole = torch.zeros_like(crops[:1])
    hole[..., first:last, first:last] = 1
    return generator(erase(crops, hole.expand(len(crops), -1, -1, -1)))[:, 0, first:last, first:last]


def folded(generator: UNetGenerator) -> UNetGenerator:
    """An inference copy of ``generator`` with every batch norm folded into the convolution before it (cached
    per generator; the copy is rebuilt if the generator's weights are replaced)."""
    version = sum(parameter._version for parameter in generator.parameters())
    cached = _FOLDED.get(generator)
    if cached is not None and cached.source_version == version:
        return cached
    copied = copy.deepcopy(generator).eval()
    for block in copied.modules():
        if isinstance(block, ConvBlock):
            layers = list(block.body)
            if any(isinstance(layer, nn.BatchNorm2d) for layer in layers):
                block.body = nn.Sequential(fuse_conv_bn_eval(layers[0], layers[1]), layers[2], fuse_conv_bn_eval(layers[3], layers[4]), layers[5])
    copied.source_version = version
    _FOLDED[generator] = copied
    return copied


def bfloat16_is_fast(device: str | torch.device) -> bool:
    """Whether bfloat16 autocast speeds convolutions up here: CUDA with bf16 support, or an x86 CPU with
    AVX-512 BF16 or AMX (elsewhere the CPU emulates bf16 and is slower than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """nn.MaxPool2d(2) as the maximum of four strided views: the same values, several times faster on CPU
    for channels-last maps (the pooling kernel also computes indices that inference never uses)."""
    return torch.maximum(torch.maximum(x[..., ::2, ::2], x[..., 1::2, ::2]), torch.maximum(x[..., ::2, 1::2], x[..., 1::2, 1::2]))


def _block_unpadded(block: ConvBlock, x: torch.Tensor) -> torch.Tensor:
    """A ConvBlock whose convolutions add no padding: the output is two pixels smaller on every side."""
    for layer in block.body:
        x = F.conv2d(x, layer.weight, layer.bias) if isinstance(layer, nn.Conv2d) else layer(x)
    return x


def _decoder_regions(side: int, first: int, last: int, generator: UNetGenerator) -> list[tuple[int, int] | None]:
    """Per decoder level (0 = full resolution of the UNet), the [start, stop) rows/columns of that level's output
    the prediction on [first, last) needs, or None where the whole level must be computed (too close to the edge)."""
    scale = generator.downsample
    # Bilinear upsampling reads one source pixel either side of each output pixel.
    needed = (max(first // scale - 1, 0), min(-(-last // scale) + 1, side // scale))
    regions = []
    for level in range(len(generator.decoders)):
        size = side // scale >> level
        start, stop = needed
        if start - 2 < 0 or stop + 2 > size:  # padded convolutions at the edge: compute this level and deeper whole
            regions.extend([None] * (len(generator.decoders) - level))
            break
        regions.append(needed)
        needed = ((start - 2) // 2, -(-(stop + 2) // 2))
    return regions


def predict_centre(generator: UNetGenerator, crops: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """:func:`predict_hole` for a UNetGenerator: equal to ``generator(erase(crops, hole))[:, 0, first:last,
    first:last]`` with ``hole`` that square, decoding only what that square needs."""
    side = crops.shape[-1]
    hole = torch.zeros((1, 1, side, side), dtype=crops.dtype, device=crops.device)
    hole[..., first:last, first:last] = 1
    image = crops * (1 - hole)
    if generator.downsample > 1:  # as UNetGenerator.forward, with the hole (the same for every crop) pooled once
        image, hole = F.avg_pool2d(image, generator.downsample), F.max_pool2d(hole, generator.downsample)
    x = torch.cat([image, hole.expand(len(crops), -1, -1, -1)], dim=1).contiguous(memory_format=torch.channels_last)
    skips = []
    for level, encoder in enumerate(generator.encoders):
        x = encoder(x if level == 0 else _max_pool_2x2(x))
        skips.append(x)
    x, region_of_x = skips.pop(), None  # None: x covers its whole level
    regions = _decoder_regions(side, first, last, generator)
    for level, upsample, decoder in zip(reversed(range(len(regions))), generator.upsamplers, generator.decoders):
        region, skip = regions[level], skips.pop()
        up = upsample(x)
        if region is None:
            x = decoder(torch.cat([up, skip], dim=1))
        else:
            start, stop = region[0] - 2, region[1] + 2
            offset = 0 if region_of_x is None else 2 * region_of_x[0]
            cut = slice(start - offset, stop - offset)
            x = _block_unpadded(decoder, torch.cat([up[..., cut, cut], skip[..., start:stop, start:stop]], dim=1))
        region_of_x = region
    x = torch.sigmoid(generator.head(x))
    scale = generator.downsample
    offset = 0 if region_of_x is None else scale * region_of_x[0]
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    return x[:, 0, first - offset : last - offset, first - offset : last - offset]
