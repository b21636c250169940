"""AnoGAN (Schlegl et al. 2017), the paper's comparison, on the same healthy slices and the same test slices.

    python training_scripts/baseline_anogan.py train --pack .cache/slices_flair.npz --out runs/anogan_flair
    python training_scripts/baseline_anogan.py evaluate --model runs/anogan_flair --cache .cache/heatmaps_flair32_val.npz \
        --json runs/anogan_flair_val.json

A DCGAN learns healthy 64 x 64 slices (each training slice resized from its full frame). For a query slice,
a latent z is searched by ``--steps`` Adam steps on (1 - lambda) * |x - G(z)| + lambda * |f(x) - f(G(z))|
(f: the discriminator's last feature layer, lambda 0.1, as in AnoGAN); the residual |x - G(z)|, resized to
the slice, is the heatmap, and the superpixel step is exactly paper mode. Test slices are read from a heatmap
cache of ``inpaint-seg evaluate --heatmap-cache``, so both methods are scored on identical slices.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from skimage.transform import resize
from torch import nn

from napari_inpaint_seg.errors import InputError, first_line
from napari_inpaint_seg.evaluation import read_heatmap_cache_unchecked, score_selection
from napari_inpaint_seg.io import current_umask, write_atomically
from napari_inpaint_seg.segmentation import PAPER_SELECTION, PAPER_SUPERPIXELS
from napari_inpaint_seg.training.arguments import input_errors_exit, positive_int
from napari_inpaint_seg.training.data import load_slice_pack

SIDE = 64
LATENT = 100
FEATURE_WEIGHT = 0.1  # AnoGAN's lambda


class Generator(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.net = nn.Sequential(
            nn.ConvTranspose2d(LATENT, width * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 8), nn.ReLU(True),  # 4
            *up(width * 8, width * 4), *up(width * 4, width * 2), *up(width * 2, width),  # 8, 16, 32
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid(),  # 64, intensities in [0, 1] like the slices
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]

        self.features = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2, True), *down(width, width * 2), *down(width * 2, width * 4), *down(width * 4, width * 8))
        self.head = nn.Conv2d(width * 8, 1, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        return self.head(features).flatten(), features


def small(image: np.ndarray) -> np.ndarray:
    return resize(image, (SIDE, SIDE), anti_aliasing=True, preserve_range=True).astype(np.float32)


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images = torch.from_numpy(np.stack([small(image) for image in load_slice_pack(args.pack).images]))[:, None]
    generator, discriminator = Generator(), Discriminator()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    began = time.monotonic()
    for iteration in range(1, args.iterations + 1):
        real = images[rng.integers(len(images), size=args.batch_size)]
        fake = generator(torch.randn(args.batch_size, LATENT))
        d_loss = bce(discriminator(real)[0], torch.ones(args.batch_size)) + bce(discriminator(fake.detach())[0], torch.zeros(args.batch_size))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(discriminator(fake)[0], torch.ones(args.batch_size))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if iteration % 200 == 0:
            print(f"{iteration}: D {d_loss.item():.3f} G {g_loss.item():.3f} ({time.monotonic() - began:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(args.out / "generator.safetensors", generator, {"iterations": str(args.iterations), "pack": str(args.pack)})
    save_model(args.out / "discriminator.safetensors", discriminator)


def save_model(path: Path, model: nn.Module, metadata: dict[str, str] | None = None) -> None:
    """Weights as safetensors, written whole or not at all, so an interrupted save leaves no unloadable file."""
    tensors = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}

    def write(tmp_path: str) -> None:
        save_file(tensors, tmp_path, metadata=metadata)
        os.chmod(tmp_path, 0o666 & ~current_umask())  # safetensors writes 0600; the baseline is meant to be shared

    write_atomically(path, write)


def residual_heatmaps(images: np.ndarray, generator: Generator, discriminator: Discriminator, steps: int, seed: int) -> np.ndarray:
    """AnoGAN's latent mapping for a batch of slices at once (each z only affects its own slice's loss)."""
    x = torch.from_numpy(np.stack([small(image) for image in images]))[:, None]
    torch.manual_seed(seed)
    z = torch.randn(len(x), LATENT, requires_grad=True)
    optimiser = torch.optim.Adam([z], lr=0.1)
    with torch.no_grad():
        target_features = discriminator(x)[1]
    for _ in range(steps):
        fake = generator(z)
        residual = (x - fake).abs().flatten(1).sum(1)
        feature = (target_features - discriminator(fake)[1]).abs().flatten(1).sum(1)
        loss = ((1 - FEATURE_WEIGHT) * residual + FEATURE_WEIGHT * feature).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        residual = (x - generator(z)).abs()[:, 0].numpy()
    return np.stack([resize(r, image.shape, order=1, preserve_range=True) for r, image in zip(residual, images)]).astype(np.float32)


def load_model(path: Path, model: nn.Module) -> None:
    """Weights saved by :func:`save_model` into ``model``; a missing, damaged or foreign file is an InputError."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (train the baseline first: baseline_anogan.py train --out {path.parent})")
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as exc:  # safetensors and torch raise several types for damaged or foreign files
        raise InputError(f"{path}: not weights of this baseline ({first_line(exc)})") from exc


def evaluate(args: argparse.Namespace) -> None:
    generator, discriminator = Generator(), Discriminator()
    load_model(args.model / "generator.safetensors", generator)
    load_model(args.model / "discriminator.safetensors", discriminator)
    generator.eval()
    discriminator.eval()
    for module in (generator, discriminator):
        module.requires_grad_(False)
    slices, _ = read_heatmap_cache_unchecked(args.cache)
    began = time.perf_counter()
    heatmaps = residual_heatmaps(np.stack([item.image for item in slices]), generator, discriminator, args.steps, args.seed)
    seconds = (time.perf_counter() - began) / len(slices)
    scored = [replace(item, heatmap=np.where(item.brain, heat, 0.0).astype(np.float32)) for item, heat in zip(slices, heatmaps)]
    scores = score_selection(scored, PAPER_SUPERPIXELS, PAPER_SELECTION)
    scores.pop("dice_per_slice")
    scores.update(selection=f"AnoGAN ({args.steps} latent steps), top segment", seconds_per_slice=seconds)
    print(json.dumps(scores))
    if args.json:
        args.json.write_text(json.dumps(scores, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="baseline_anogan.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train")
    train_parser.add_argument("--pack", type=Path, required=True, help=".npz made by pack_slices.py")
    train_parser.add_argument("--iterations", type=positive_int, default=3000, help="DCGAN iterations (default: %(default)s)")
    train_parser.add_argument("--batch-size", type=positive_int, default=64, help="slices per iteration (default: %(default)s)")
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--out", type=Path, required=True, help="folder for generator.safetensors and discriminator.safetensors")
    evaluate_parser = commands.add_parser("evaluate")
    evaluate_parser.add_argument("--model", type=Path, required=True)
    evaluate_parser.add_argument("--cache", type=Path, required=True)
    evaluate_parser.add_argument("--steps", type=positive_int, default=500, help="latent mapping steps (AnoGAN's Gamma)")
    evaluate_parser.add_argument("--seed", type=int, default=0)
    evaluate_parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with input_errors_exit(parser):
        {"train": train, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
