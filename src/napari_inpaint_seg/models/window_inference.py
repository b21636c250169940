"""G's whole-slice prediction inside many windows, recomputing per window only what the window changes.

The paper's localiser erases one window, runs G on the whole slice and reads the prediction inside the window.
Erasing a window changes G's feature maps only near it: at each encoder level the change spreads by two pixels
per 3x3 convolution and halves with each pooling. So the clean slice (nothing erased) is encoded once; for each
window the encoder is rerun only on the changed neighbourhood, with the clean maps around it as the boundary,
and the decoder only on what the window's output needs. The result is the whole-slice pass (tested to float
rounding) for about a ninth of its arithmetic at gamma = 32 on a 256 x 256 slice (61 M multiply-adds per window
when the batch mixes offsets from the UNet's grid, 41 M for one offset, against 555 M). Batch norm is folded
into the convolutions, and the fast localiser may run all this in bfloat16 where the hardware makes that fast.

Geometry: regions are intervals relative to an anchor, the window's start rounded down to the UNet's stride, so
that every window of a batch has regions of the same size (the worst case over the batch's offsets from their
anchors, per axis) and every cut-out is aligned with the 2x2 poolings. All regions are in the coordinates of their level
(level 0: the UNet's own input, the slice after its ``downsample`` pooling). Outside the slice every level is
zero, as the padded convolutions of the whole-slice pass see it.
"""

from __future__ import annotations

import copy
import functools
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .generator import ConvBlock, UNetGenerator

_FOLDED: weakref.WeakKeyDictionary[UNetGenerator, dict[torch.dtype, UNetGenerator]] = weakref.WeakKeyDictionary()


def folded(generator: UNetGenerator, dtype: torch.dtype = torch.float32) -> UNetGenerator:
    """An inference copy of ``generator`` with every batch norm folded into the convolution before it, its
    weights in ``dtype`` (cached per generator and dtype; rebuilt when any weight or batch-norm statistic of the
    generator is changed or replaced, since the folded weights are made from both).

    Weights of the inference dtype rather than autocast: autocast casts the weights again at every call and
    promotes whatever meets a float32 tensor (the masks) back to float32.
    """
    version = tuple((id(tensor), tensor._version) for tensor in generator.state_dict(keep_vars=True).values())
    cached = _FOLDED.setdefault(generator, {})
    if dtype in cached and cached[dtype].source_version == version:
        return cached[dtype]
    copied = copy.deepcopy(generator).eval()
    for block in copied.modules():
        if isinstance(block, ConvBlock):
            layers = list(block.body)
            if any(isinstance(layer, nn.BatchNorm2d) for layer in layers):
                block.body = nn.Sequential(fuse_conv_bn_eval(layers[0], layers[1]), layers[2], fuse_conv_bn_eval(layers[3], layers[4]), layers[5])
    copied = copied.to(dtype)
    copied.source_version = version
    cached[dtype] = copied
    return copied


def bfloat16_is_fast(device: str | torch.device) -> bool:
    """Whether bfloat16 autocast speeds convolutions up here: CUDA with bf16 support, or an x86 CPU with
    AVX-512 BF16 or AMX (elsewhere the CPU emulates bf16 and is slower than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_has_bfloat16()


@functools.cache
def _cpu_has_bfloat16() -> bool:
    """Read once per process: the fast localiser asks for every slice."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """nn.MaxPool2d(2) as the maximum of four strided views: the same values, several times faster on CPU
    for channels-last maps (the pooling kernel also computes indices that inference never uses)."""
    return torch.maximum(torch.maximum(x[..., ::2, ::2], x[..., 1::2, ::2]), torch.maximum(x[..., ::2, 1::2], x[..., 1::2, 1::2]))


def block_unpadded(block: ConvBlock, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
    """A ConvBlock whose convolutions add no padding: the output is two pixels smaller on every side.

    ``masks`` (one per convolution, shaped like its output) zero what lies outside the slice after each one, as
    the padded convolutions of a whole-slice pass see it.
    """
    masks = list(masks or [])
    for layer in block.body:
        x = F.conv2d(x, layer.weight, layer.bias) if isinstance(layer, nn.Conv2d) else layer(x)
        if isinstance(layer, nn.ReLU) and masks:
            x.mul_(masks.pop(0))  # in place: x is the ReLU's fresh output
    return x


Interval = tuple[int, int]


def _grow(interval: Interval, by: int) -> Interval:
    return interval[0] - by, interval[1] + by


def _to_coarser(interval: Interval) -> Interval:
    """The pixels one level down (half the resolution) that hold ``interval``."""
    return interval[0] // 2, -(-interval[1] // 2)


def _to_finer(interval: Interval) -> Interval:
    return 2 * interval[0], 2 * interval[1]


def _even(interval: Interval) -> Interval:
    """Rounded outwards to even ends, so the region pools onto whole pixels of the next level."""
    return interval[0] // 2 * 2, -(-interval[1] // 2) * 2


def _union(a: Interval, b: Interval) -> Interval:
    return min(a[0], b[0]), max(a[1], b[1])


def _intersection(a: Interval, b: Interval) -> Interval:
    return max(a[0], b[0]), min(a[1], b[1])


@dataclass(frozen=True)
class WindowRegions:
    """Per level, relative to the anchor: where the encoder is recomputed (``encode``), the decoder's input
    (``decode_in``) and output (``decode_out``; its last entry is where the deepest decoder reads the
    bottleneck)."""

    encode: list[Interval]
    decode_in: list[Interval]
    decode_out: list[Interval]

    def reach(self, level: int) -> Interval:
        """Everything read at ``level``: the encoder's input and the decoder's (or the bottleneck's) region."""
        decoded = self.decode_in[level] if level < len(self.decode_in) else self.decode_out[level]
        return _union(_grow(self.encode[level], 2), decoded)

    @classmethod
    def for_window(cls, gamma: int, downsample: int, depth: int, offsets: tuple[int, ...] | None = None) -> WindowRegions:
        """Regions along one axis for windows starting at ``offsets`` (in slice pixels) after their anchor, a
        multiple of the UNet's stride; None: anywhere in the stride (the worst case)."""
        offsets = offsets or tuple(range(downsample * 2**depth))
        hole = (min(offsets) // downsample, -(-(max(offsets) + gamma) // downsample))  # at level 0
        # Encoder: where erasing can change each map (two pixels per convolution, halved by each pooling).
        changed = [_grow(hole, 2)]
        for _ in range(depth):
            changed.append(_grow(_to_coarser(changed[-1]), 2))
        # Decoder, from the output back: bilinear upsampling reads one pixel either side.
        decode_out = [_grow(hole, 1)]
        decode_in = []
        for level in range(depth):
            decode_in.append(_grow(decode_out[level], 2))
            decode_out.append(_to_coarser(decode_in[level]))
        # Encoder, from the deepest level up: recompute what the window changes, where the level above (the next
        # encoder's input) or the decoder reads it.
        known = [(0, 0)] * (depth + 1)
        encode = [(0, 0)] * (depth + 1)
        known[depth] = decode_out[depth]
        for level in reversed(range(depth + 1)):
            if level < depth:
                known[level] = _even(_union(_to_finer(_grow(encode[level + 1], 2)), decode_in[level]))
            encode[level] = _intersection(changed[level], known[level])
            if level < depth:
                encode[level] = _even(encode[level])
        return cls(encode, decode_in, decode_out)


Box = tuple[Interval, Interval]  # rows, columns


def _box_grow(box: Box, by: int) -> Box:
    return _grow(box[0], by), _grow(box[1], by)


def _offsets(anchors: torch.Tensor, box: Box, shift: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, rows) and (N, columns) indices of the cut-outs at ``anchors`` + ``box`` (+ ``shift``)."""
    device = anchors.device
    rows = anchors[:, 0, None] + torch.arange(box[0][0], box[0][1], device=device) + shift
    cols = anchors[:, 1, None] + torch.arange(box[1][0], box[1][1], device=device) + shift
    return rows, cols


def _gather(padded: torch.Tensor, pad: int, anchors: torch.Tensor, box: Box) -> torch.Tensor:
    """(N, C, rows, cols) channels-last cut-outs of a zero-padded (H + 2 pad, W + 2 pad, C) map at anchors + box.

    On the CPU, stacked slices: each cut-out is a block of whole rows of C values, and copying blocks is about
    three times faster than indexing every element. Elsewhere one indexing kernel: a slice per window costs a
    Python call and a launch each, which on a GPU would take longer than the arithmetic."""
    if padded.device.type == "cpu":
        return _gather_by_slices(padded, pad, anchors, box)
    return _gather_by_index(padded, pad, anchors, box)


def _gather_by_slices(padded: torch.Tensor, pad: int, anchors: torch.Tensor, box: Box) -> torch.Tensor:
    (row_low, row_high), (col_low, col_high) = box
    cut_outs = [padded[row + row_low + pad : row + row_high + pad, col + col_low + pad : col + col_high + pad] for row, col in anchors.tolist()]
    return torch.stack(cut_outs).permute(0, 3, 1, 2)


def _gather_by_index(padded: torch.Tensor, pad: int, anchors: torch.Tensor, box: Box) -> torch.Tensor:
    rows, cols = _offsets(anchors, box, shift=pad)
    return padded[rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _paste(target: torch.Tensor, target_box: Box, source: torch.Tensor, source_box: Box) -> torch.Tensor:
    """Copy the part of ``source`` that overlaps ``target`` into it (both (N, C, rows, cols) cut-outs on boxes)."""
    cuts = []
    for target_interval, source_interval in zip(target_box, source_box):
        low, high = _intersection(target_interval, source_interval)
        cuts.append((slice(low - target_interval[0], high - target_interval[0]), slice(low - source_interval[0], high - source_interval[0])))
    (rows_into, rows_out_of), (cols_into, cols_out_of) = cuts
    target[..., rows_into, cols_into] = source[..., rows_out_of, cols_out_of].to(target.dtype)
    return target


def _inside(anchors: torch.Tensor, box: Box, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """(N, 1, rows, cols) 1 where the cut-out at ``anchors`` + box lies in a map of ``shape``, else 0."""
    rows, cols = _offsets(anchors, box)
    valid_rows = (rows >= 0) & (rows < shape[0])
    valid_cols = (cols >= 0) & (cols < shape[1])
    return (valid_rows[:, :, None] & valid_cols[:, None, :])[:, None].to(dtype)


class SliceInpainter:
    """G's prediction inside gamma x gamma windows of one slice, as the whole-slice pass gives it.

    ``image`` is (H, W) with H and W multiples of the UNet's stride, like the slice the reference pads. The
    regions recomputed for a batch are the worst case over the offsets of its windows from their anchors (per
    axis): a batch of windows on a grid of the UNet's stride costs least.
    """

    def __init__(self, generator: UNetGenerator, image: torch.Tensor, gamma: int, dtype: torch.dtype = torch.float32) -> None:
        # The output layer stays in float32: the prediction is read on a 0-255 scale, finer than bfloat16's steps.
        self.head = folded(generator).head
        generator = folded(generator, dtype)
        self.generator, self.gamma, self.dtype = generator, gamma, dtype
        self.depth, self.scale = len(generator.decoders), generator.downsample
        self.unit = self.scale * 2**self.depth
        self._regions: dict[tuple[int, ...], WindowRegions] = {}
        widest = self.regions(None)
        levels = range(self.depth + 1)
        self.pad = [max(-widest.reach(level)[0], widest.reach(level)[1]) + 1 for level in levels]
        self.image_pad = self.scale * self.pad[0]
        self.image = F.pad(image, (self.image_pad,) * 4)[:, :, None]
        self.shapes = [(image.shape[0] // self.scale >> level, image.shape[1] // self.scale >> level) for level in levels]
        x = image[None, None]
        if self.scale > 1:
            x = F.avg_pool2d(x, self.scale)
        x = torch.cat([x, torch.zeros_like(x)], dim=1).to(dtype)  # nothing erased: the mask channel is 0
        # Per level, the clean map the encoder block reads (pooled) and the one it writes, channels last.
        self.clean_in, self.clean_out = [], []
        for level, encoder in enumerate(generator.encoders):
            x = x if level == 0 else max_pool_2x2(x)
            self.clean_in.append(F.pad(x[0], (self.pad[level],) * 4).permute(1, 2, 0).contiguous())
            x = encoder(x)
            self.clean_out.append(F.pad(x[0], (self.pad[level],) * 4).permute(1, 2, 0).contiguous())

    def regions(self, offsets: tuple[int, ...] | None) -> WindowRegions:
        if offsets not in self._regions:
            self._regions[offsets] = WindowRegions.for_window(self.gamma, self.scale, self.depth, offsets)
        return self._regions[offsets]

    def _clean_with(self, clean: list[torch.Tensor], level: int, anchors: torch.Tensor, box: Box, recomputed: torch.Tensor, recomputed_box: Box) -> torch.Tensor:
        """A map of ``level`` on ``box`` around each anchor: the clean map, with the part this window recomputed
        pasted in (the cut-out is a fresh tensor: advanced indexing copies, so the clean map is untouched)."""
        return _paste(_gather(clean[level], self.pad[level], anchors, box), box, recomputed, recomputed_box)

    def _level0_input(self, anchors: torch.Tensor, starts: torch.Tensor, box: Box) -> torch.Tensor:
        """The UNet's input on ``box`` around each anchor: the slice with the window erased, pooled."""
        scale, gamma = self.scale, self.gamma
        fine = tuple((scale * low, scale * high) for low, high in box)
        crops = _gather(self.image, self.image_pad, scale * anchors, fine)
        rows, cols = _offsets(scale * anchors, fine)
        rows, cols = rows - starts[:, 0, None], cols - starts[:, 1, None]
        holes = (((rows >= 0) & (rows < gamma))[:, :, None] & ((cols >= 0) & (cols < gamma))[:, None, :])[:, None].to(crops.dtype)
        erased = crops * (1 - holes)
        if scale > 1:
            erased, holes = F.avg_pool2d(erased, scale), F.max_pool2d(holes, scale)
        return torch.cat([erased, holes], dim=1).to(self.dtype)  # pooled in the slice's float32, as the whole-slice pass

    def predict(self, starts: np.ndarray) -> torch.Tensor:
        """(N, gamma, gamma) predictions in the windows starting at ``starts`` (N, 2) (row, column, in this slice)."""
        depth, unit, scale = self.depth, self.unit, self.scale
        device = self.image.device
        starts = np.asarray(starts)
        row_regions, col_regions = (self.regions(tuple(np.unique(starts[:, axis] % unit).tolist())) for axis in (0, 1))
        starts_t = torch.as_tensor(starts, device=device).long()
        anchor_pixels = starts_t // unit * unit  # in slice pixels
        anchors = [anchor_pixels // (scale << level) for level in range(depth + 1)]

        def box(field: str, level: int) -> Box:
            return getattr(row_regions, field)[level], getattr(col_regions, field)[level]

        def leaves_slice(level: int) -> bool:  # only then is masking needed
            (row_low, row_high), (col_low, col_high) = row_regions.reach(level), col_regions.reach(level)
            rows, cols = anchors[level][:, 0], anchors[level][:, 1]
            height, width = self.shapes[level]
            return int(rows.min()) + row_low < 0 or int(cols.min()) + col_low < 0 or int(rows.max()) + row_high > height or int(cols.max()) + col_high > width

        masked = [leaves_slice(level) for level in range(depth + 1)]

        def inside(level: int, region: Box) -> torch.Tensor:
            return _inside(anchors[level], region, self.shapes[level], self.dtype)

        def masks(level: int, region: Box) -> list[torch.Tensor] | None:  # after each convolution of a block
            return [inside(level, _box_grow(region, 1)), inside(level, region)] if masked[level] else None

        # Encoder: recompute where the window changes the maps; elsewhere the clean maps hold.
        encoded = []
        for level in range(depth + 1):
            region = box("encode", level)
            grown = _box_grow(region, 2)
            if level == 0:
                x = self._level0_input(anchors[0], starts_t, grown)
            else:
                pooled = tuple(_to_coarser(interval) for interval in box("encode", level - 1))
                x = self._clean_with(self.clean_in, level, anchors[level], grown, max_pool_2x2(encoded[-1]), pooled)
            encoded.append(block_unpadded(self.generator.encoders[level], x, masks(level, region)))
        # Decoder: only what the window's output needs; its inputs are the clean maps with the recomputed parts.
        region_of_x = box("decode_out", depth)
        x = self._clean_with(self.clean_out, depth, anchors[depth], region_of_x, encoded[depth], box("encode", depth))
        for level, upsample, decoder in zip(reversed(range(depth)), self.generator.upsamplers, self.generator.decoders):
            wanted, out_region = box("decode_in", level), box("decode_out", level)
            rows_cut, cols_cut = (slice(low - 2 * have[0], high - 2 * have[0]) for (low, high), have in zip(wanted, region_of_x))
            skip = self._clean_with(self.clean_out, level, anchors[level], wanted, encoded[level], box("encode", level))
            x = torch.cat([upsample(x)[..., rows_cut, cols_cut], skip], dim=1)
            if masked[level]:
                x.mul_(inside(level, wanted))
            x = block_unpadded(decoder, x, masks(level, out_region))
            region_of_x = out_region
        x = torch.sigmoid(self.head(x.float()))
        if masked[0]:
            x = self._clamp_to_slice(x, anchors[0], region_of_x)
        if scale > 1:
            x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        # The window inside the upsampled cut-out, which starts at scale * (anchor + region start).
        first = torch.tensor([region_of_x[0][0], region_of_x[1][0]], device=device)
        offsets = starts_t - scale * (anchors[0] + first)
        window = torch.arange(self.gamma, device=device)
        rows = offsets[:, 0, None] + window
        cols = offsets[:, 1, None] + window
        return x[torch.arange(len(starts_t), device=device)[:, None, None], 0, rows[:, :, None], cols[:, None, :]]

    def _clamp_to_slice(self, x: torch.Tensor, anchors: torch.Tensor, region: Box) -> torch.Tensor:
        """Outside the slice, repeat its edge: bilinear upsampling of the whole slice clamps there."""
        rows, cols = _offsets(anchors, region)
        height, width = self.shapes[0]
        rows = rows.clamp(0, height - 1) - anchors[:, 0, None] - region[0][0]
        cols = cols.clamp(0, width - 1) - anchors[:, 1, None] - region[1][0]
        batch = torch.arange(len(x), device=x.device)[:, None, None, None]
        channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return x[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]

