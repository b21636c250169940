"""UNet inpainting generator G with skip connections.

Input: two channels, (1) the image with the hole set to 0 and (2) the hole mask (1 inside the hole), so G
knows which zeros are erased tissue and which are background. Output: one channel in [0, 1] (sigmoid), the
intensity convention of :mod:`napari_inpaint_seg.intensity`. Shapes: (N, 2, H, W) -> (N, 1, H, W) with H, W
multiples of ``downsample * 2**depth``.

With ``downsample`` > 1 the UNet works at a reduced resolution (image average-pooled, hole max-pooled, output
upsampled bilinearly): a 32-pixel hole needs no more detail than that, and every layer costs ``downsample**2``
less, which is what makes CPU training and interactive localisation possible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNetGenerator(nn.Module):
    """Encoder-decoder with ``depth`` halvings; every decoder level concatenates the encoder level of its size."""

    def __init__(self, base_channels: int = 16, depth: int = 3, downsample: int = 1) -> None:
        super().__init__()
        self.downsample = downsample
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList([ConvBlock(2, widths[0])])
        self.encoders.extend(ConvBlock(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.upsamplers = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth)))
        self.decoders = nn.ModuleList(ConvBlock(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample > 1:
            x = torch.cat([F.avg_pool2d(x[:, :1], self.downsample), F.max_pool2d(x[:, 1:], self.downsample)], dim=1)
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for upsample, decoder in zip(self.upsamplers, self.decoders):
            x = decoder(torch.cat([upsample(x), skips.pop()], dim=1))
        x = torch.sigmoid(self.head(x))
        if self.downsample > 1:
            x = F.interpolate(x, scale_factor=self.downsample, mode="bilinear", align_corners=False)
        return x


def erase(images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Psi(x, gamma): the generator's input, (N, 1, H, W) images and 0/1 holes -> (N, 2, H, W)."""
    return torch.cat([images * (1 - holes), holes], dim=1)


def inpaint(generator: nn.Module, images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Fill the holes with G's prediction and keep every known pixel as it was."""
    prediction = generator(erase(images, holes))
    return images * (1 - holes) + prediction * holes
