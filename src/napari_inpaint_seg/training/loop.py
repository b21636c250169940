"""Algorithm 1: alternate discriminator and generator steps on random hole crops of healthy slices.

L_G = lambda_rec * L1(hole) + lambda_adv * log(1 - D(G(Psi(x, gamma))))  (the paper's form);
D minimises the standard GAN cross-entropy. Runs on one process or under ``torchrun`` (DDP, any backend).
"""

from __future__ import annotations

import csv
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .. import __version__
from ..models.checkpoint import build_generator, save_generator
from ..models.config import ModelConfig, default_context
from ..models.discriminator import SpectralNormDiscriminator
from ..models.generator import inpaint
from .data import SliceSet, sample_hole_crops


@dataclass
class TrainConfig:
    """The paper's defaults; ``context`` 0 means :func:`default_context` of gamma."""

    gamma: int = 32
    modality: str = "t1"
    iterations: int = 30_000
    batch_size: int = 16
    lr_generator: float = 1e-4
    lr_discriminator: float = 1e-3
    lambda_rec: float = 50.0
    lambda_adv: float = 1.0
    base_channels: int = 16
    depth: int = 3
    downsample: int = 2
    context: int = 0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50

    def model_config(self, iterations_done: int, data: str) -> ModelConfig:
        return ModelConfig(
            gamma=self.gamma,
            modality=self.modality,
            base_channels=self.base_channels,
            depth=self.depth,
            downsample=self.downsample,
            context=self.context or default_context(self.gamma, self.depth, self.downsample),
            iterations=iterations_done,
            data=data,
            code_version=code_version(),
            notes={"train": asdict(self)},
        )


def code_version() -> str:
    """Package version plus the git commit when run from a checkout, so a checkpoint names its code."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def generator_loss(d_fake_logits: torch.Tensor, filled: torch.Tensor, target: torch.Tensor, holes: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (total, L1): L1 is the mean absolute error over hole pixels; known pixels are copied, so exact."""
    l1 = (torch.abs(filled - target) * holes).sum() / holes.sum().clamp_min(1)
    adversarial = torch.log1p(-torch.sigmoid(d_fake_logits).clamp(max=1 - 1e-6)).mean()
    return cfg.lambda_rec * l1 + cfg.lambda_adv * adversarial, l1


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + F.binary_cross_entropy_with_logits(
        fake_logits, torch.zeros_like(fake_logits)
    )


def train(cfg: TrainConfig, slices: SliceSet, out_dir: str | os.PathLike, *, device: str = "cpu", progress: bool = True, max_seconds: float | None = None) -> Path:
    """Train (or resume) one generator; returns the path of the exported ``generator.safetensors``.

    ``out_dir`` holds ``state.pt`` (full training state, loaded with ``weights_only=True``), ``log.csv`` and the
    exported generator. ``max_seconds`` stops early at a checkpoint, for time-boxed runs that resume later.
    """
    out_dir = Path(out_dir)
    rank, world = _rank_and_world()
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model_cfg = cfg.model_config(0, slices.description)
    generator = build_generator(model_cfg).to(device)
    discriminator = SpectralNormDiscriminator().to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_generator, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_discriminator, betas=(0.5, 0.999))
    rng = np.random.default_rng([cfg.seed, rank])
    start = 0
    state_path = out_dir / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        start = int(state["iteration"])
        rng = np.random.default_rng([cfg.seed, rank, start])
    g_model, d_model = generator, discriminator
    if world > 1:
        g_model, d_model = DistributedDataParallel(generator), DistributedDataParallel(discriminator)

    log_file = out_dir / "log.csv"
    began = time.monotonic()
    iterator = range(start, cfg.iterations)
    if progress and rank == 0:
        from tqdm import tqdm

        iterator = tqdm(iterator, initial=start, total=cfg.iterations, desc=f"train gamma={cfg.gamma} {cfg.modality}")
    context = model_cfg.context
    for iteration in iterator:
        images_np, holes_np = sample_hole_crops(slices, cfg.batch_size, cfg.gamma, context, rng)
        images, holes = torch.from_numpy(images_np).to(device), torch.from_numpy(holes_np).to(device)
        generator.train()
        filled = inpaint(g_model, images, holes)

        opt_d.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(d_model(images), d_model(filled.detach()))
        d_loss.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        g_loss, l1 = generator_loss(d_model(filled), filled, images, holes, cfg)
        g_loss.backward()
        opt_g.step()

        done = iteration + 1
        if rank == 0 and (done % cfg.log_every == 0 or done == cfg.iterations):
            _append_log(log_file, {"iteration": done, "g_loss": g_loss.item(), "l1_hole": l1.item(), "d_loss": d_loss.item(), "seconds": round(time.monotonic() - began, 1)})
        out_of_time = _all_agree_out_of_time(max_seconds is not None and time.monotonic() - began > max_seconds, world, device)
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations or out_of_time:
            if rank == 0:
                _save_state(state_path, generator, discriminator, opt_g, opt_d, done)
                save_generator(out_dir / "generator.safetensors", generator, cfg.model_config(done, slices.description))
            if out_of_time:
                break
    if world > 1:
        dist.barrier()
    return out_dir / "generator.safetensors"


def _all_agree_out_of_time(mine: bool, world: int, device: str) -> bool:
    """Every rank stops at the same iteration, or a rank that stopped alone would leave the others hanging."""
    if world == 1:
        return mine
    flag = torch.tensor([int(mine)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _save_state(path: Path, generator, discriminator, opt_g, opt_d, iteration: int) -> None:
    tmp = path.with_suffix(".part")
    torch.save(
        {"generator": generator.state_dict(), "discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "iteration": iteration},
        tmp,
    )
    os.replace(tmp, path)


def _append_log(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
