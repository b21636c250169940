"""Discriminator D with spectral normalisation (a PatchGAN: one realism logit per patch, averaged)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class SpectralNormDiscriminator(nn.Module):
    """Strided 4x4 convolutions, each spectrally normalised; (N, 1, H, W) -> (N,) logits."""

    def __init__(self, base_channels: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for level in range(n_layers):
            out_channels = base_channels * 2**level
            layers += [spectral_norm(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            in_channels = out_channels
        layers.append(spectral_norm(nn.Conv2d(in_channels, 1, 3, padding=1)))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(1, 2, 3))
