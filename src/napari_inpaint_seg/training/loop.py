"""Algorithm 1: alternate discriminator and generator steps on random hole crops of healthy slices.

L_G = lambda_rec * L1(hole) + lambda_adv * log(1 - D(G(Psi(x, gamma))))  (the paper's saturating form);
D minimises the standard GAN cross-entropy. Runs on one process or under ``torchrun`` (DDP, any backend).
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .. import __version__
from ..errors import InputError, first_line
from ..io import write_atomically
from ..models.checkpoint import build_generator, load_generator, save_generator
from ..models.config import ModelConfig, checkpoint_config, default_context
from ..models.discriminator import SpectralNormDiscriminator
from ..models.generator import inpaint
from .data import SliceSet, check_slices, sample_hole_crops, slices_fingerprint

# Settings a resumed run may change: how long it runs and how often it writes, not what it learns.
RESUMABLE_SETTINGS = ("iterations", "checkpoint_every", "log_every")
STATE_KEYS = ("generator", "discriminator", "opt_g", "opt_d", "iteration")
# What torch.load raises for a truncated, foreign or unsafe (pickled code) file under weights_only.
STATE_READ_ERRORS = (OSError, RuntimeError, ValueError, EOFError, KeyError, pickle.UnpicklingError)


@dataclass
class TrainConfig:
    """The paper's defaults; ``context`` 0 means :func:`default_context` of gamma. ``init_from``: a generator
    checkpoint whose weights G starts from instead of random ones (fine-tuning; D starts afresh), trained for
    ``init_iterations`` already, which the exported model's iteration count includes."""

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
    init_from: str = ""
    init_iterations: int = 0

    def model_config(self, iterations_done: int, data: str) -> ModelConfig:
        return ModelConfig(
            gamma=self.gamma,
            modality=self.modality,
            base_channels=self.base_channels,
            depth=self.depth,
            downsample=self.downsample,
            context=self.context or default_context(self.gamma, self.depth, self.downsample),
            iterations=self.init_iterations + iterations_done,
            data=data,
            code_version=code_version(),
            notes={"train": asdict(self)},
        )

    def problems(self) -> list[str]:
        """What makes this configuration untrainable, or its model unloadable (empty when it is fine)."""
        counts = ("iterations", "batch_size", "checkpoint_every", "log_every", "downsample")
        found = [f"{name}={getattr(self, name)!r} must be at least 1" for name in counts if not getattr(self, name) >= 1]
        found += [f"{name}={getattr(self, name)!r} must be above 0" for name in ("lr_generator", "lr_discriminator") if not 0 < getattr(self, name) < math.inf]
        found += [f"{name}={getattr(self, name)!r} must be at least 0" for name in ("lambda_rec", "lambda_adv") if not 0 <= getattr(self, name) < math.inf]
        found += [f"init_iterations={self.init_iterations!r} must be at least 0"] if not self.init_iterations >= 0 else []
        if not found:  # default_context divides by the stride, so only a sane config is turned into a model's
            found += self.model_config(0, "").problems()
        return found


def check_config(cfg: TrainConfig) -> None:
    """Refuse an unusable configuration, or a starting generator it cannot continue, before any data is read or step
    is taken."""
    problems = cfg.problems()
    if not problems and cfg.init_from:
        problems = _starting_generator_problems(cfg)
    if problems:
        raise InputError(f"unusable training configuration: {'; '.join(problems)}")


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
    """Returns (total, L1): L1 is the mean absolute error over hole pixels; known pixels are copied, so exact.

    The adversarial term is the paper's saturating log(1 - D(G)), computed exactly as -softplus(logit): a clamped
    log(1 - sigmoid) would have no gradient once D is confident.
    """
    l1 = (torch.abs(filled - target) * holes).sum() / holes.sum().clamp_min(1)
    adversarial = -F.softplus(d_fake_logits).mean()
    return cfg.lambda_rec * l1 + cfg.lambda_adv * adversarial, l1


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + F.binary_cross_entropy_with_logits(
        fake_logits, torch.zeros_like(fake_logits)
    )


def train(cfg: TrainConfig, slices: SliceSet, out_dir: str | os.PathLike, *, device: str = "cpu", progress: bool = True, max_seconds: float | None = None) -> Path:
    """Train (or resume) one generator; returns the path of the exported ``generator.safetensors``.

    ``out_dir`` holds ``state.pt`` (full training state with the settings, the data's fingerprint and the random
    streams, loaded with ``weights_only=True``), ``log.csv`` and the exported generator. A resumed run must have
    the same settings (except :data:`RESUMABLE_SETTINGS`) and data, and then equals an uninterrupted one.
    ``max_seconds`` stops early at a checkpoint, for time-boxed runs that resume later.
    """
    check_config(cfg)
    check_slices(slices)
    if slices.modality and slices.modality != cfg.modality:
        raise InputError(f"the training slices are {slices.modality} ({slices.description}), not {cfg.modality}; pass --modality {slices.modality}")
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
    data_key = slices_fingerprint(slices)
    start, seconds_before = 0, 0.0
    state_path = out_dir / "state.pt"
    if state_path.is_file():
        state = _read_state(state_path, device)
        _check_same_run(state, cfg, data_key, out_dir, quiet=rank != 0)
        _restore_models(state, state_path, generator, discriminator, opt_g, opt_d)
        start, seconds_before = int(state["iteration"]), float(state.get("seconds", 0.0))
        rng = _resumed_rng(state, cfg.seed, rank, world, start)
    elif cfg.init_from:
        _start_from_checkpoint(generator, cfg)
    g_model, d_model = generator, discriminator
    if world > 1:
        g_model, d_model = DistributedDataParallel(generator), DistributedDataParallel(discriminator)

    log_file = out_dir / "log.csv"
    if rank == 0:
        _cut_log(log_file, start)
    began = time.monotonic()
    iterator = range(start, cfg.iterations)
    if progress and rank == 0:
        from tqdm import tqdm

        iterator = tqdm(iterator, initial=start, total=cfg.iterations, desc=f"train gamma={cfg.gamma} {cfg.modality}")
    done = start
    for iteration in iterator:
        images_np, holes_np = sample_hole_crops(slices, cfg.batch_size, cfg.gamma, model_cfg.context, rng)
        images, holes = torch.from_numpy(images_np).to(device), torch.from_numpy(holes_np).to(device)
        g_loss, l1, d_loss = _training_step(g_model, d_model, generator, opt_g, opt_d, images, holes, cfg)
        done = iteration + 1
        seconds = seconds_before + time.monotonic() - began
        if rank == 0 and (done % cfg.log_every == 0 or done == cfg.iterations):
            _append_log(log_file, {"iteration": done, "g_loss": g_loss.item(), "l1_hole": l1.item(), "d_loss": d_loss.item(), "seconds": round(seconds, 1)})
        out_of_time = _all_agree_out_of_time(max_seconds is not None and time.monotonic() - began > max_seconds, world, device)
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations or out_of_time:
            rng_states = _rng_states_of_all_ranks(rng, world)
            if rank == 0:
                training = {"iteration": done, "seconds": seconds, "config": asdict(cfg), "data": data_key, "rng_states": rng_states}
                _save_state(state_path, generator, discriminator, opt_g, opt_d, training)
                save_generator(out_dir / "generator.safetensors", generator, cfg.model_config(done, slices.description))
            if out_of_time:
                break
    if rank == 0 and _export_is_stale(out_dir / "generator.safetensors", state_path):
        save_generator(out_dir / "generator.safetensors", generator, cfg.model_config(done, slices.description))
    if world > 1:
        dist.barrier()
    return out_dir / "generator.safetensors"


def _training_step(g_model, d_model, generator, opt_g, opt_d, images: torch.Tensor, holes: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One discriminator then one generator update; returns (generator loss, hole L1, discriminator loss)."""
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
    return g_loss, l1, d_loss


def _starting_generator_problems(cfg: TrainConfig) -> list[str]:
    """Why ``cfg.init_from`` cannot start this run (empty when it can): fine-tuning continues one model, it does not
    convert one, so the window, modality and architecture must be this run's. Reads the checkpoint's header only."""
    start, run = checkpoint_config(cfg.init_from), cfg.model_config(0, "")
    names = ("gamma", "modality", "base_channels", "depth", "downsample", "context")
    differ = [f"{name} {getattr(start, name)!r} (this run: {getattr(run, name)!r})" for name in names if getattr(start, name) != getattr(run, name)]
    return [f"{cfg.init_from}: cannot start from this generator, it differs in {', '.join(differ)}"] if differ else []


def _start_from_checkpoint(generator: torch.nn.Module, cfg: TrainConfig) -> None:
    """Load ``cfg.init_from``'s weights (checked by :func:`check_config`) into ``generator``."""
    generator.load_state_dict(load_generator(cfg.init_from)[0].state_dict())


def _read_state(path: Path, device: str) -> dict:
    """The training state in ``path``; a damaged or foreign file is an :class:`InputError`, never a traceback."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except STATE_READ_ERRORS as exc:
        raise InputError(f"{path}: not a readable training state ({first_line(exc)}); delete it to start over") from exc
    missing = [key for key in STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise InputError(f"{path}: not a training state of this tool (no {', '.join(missing)}); delete it to start over")
    return state


def _check_same_run(state: dict, cfg: TrainConfig, data_key: str, out_dir: Path, quiet: bool) -> None:
    """Refuse to resume with other settings or data: they would be half applied (the optimisers keep their old
    learning rates) while the exported model's notes claim the new ones. Older states carry neither: a note."""
    if "config" not in state:
        if not quiet:
            print(f"note: {out_dir / 'state.pt'} was written by an older version; its settings and data are not checked", file=sys.stderr)
        return
    saved = state["config"]
    defaults = asdict(TrainConfig())  # settings added since an older state was written were their defaults then
    changed = [f"{name} {saved.get(name, defaults[name])!r} (now {value!r})" for name, value in asdict(cfg).items()
               if name not in RESUMABLE_SETTINGS and saved.get(name, defaults[name]) != value]
    if changed:
        raise InputError(f"{out_dir}: this run was trained with other settings: {', '.join(changed)}; resume with its settings or use another --out")
    if state.get("data") != data_key:
        raise InputError(f"{out_dir}: this run was trained on other slices ({state.get('data')}; now {data_key}); resume with its data or use another --out")


def _restore_models(state: dict, path: Path, generator, discriminator, opt_g, opt_d) -> None:
    try:
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: does not fit this model ({first_line(exc)}); resume with its settings or use another --out") from exc


def _resumed_rng(state: dict, seed: int, rank: int, world: int, start: int) -> np.random.Generator:
    """The crop sampler where the checkpoint left it, so a resumed run draws what an uninterrupted one would.

    Torch's generator is not saved: it is only drawn from when the models are built. A state without a stream
    per process (an older version, another number of processes) gets a fresh stream for (seed, rank, start).
    """
    rng = np.random.default_rng([seed, rank, start])
    saved = state.get("rng_states")
    if isinstance(saved, list) and len(saved) == world:
        rng.bit_generator.state = saved[rank]
    return rng


def _rng_states_of_all_ranks(rng: np.random.Generator, world: int) -> list[dict]:
    """Every process's sampler state (each draws its own batches); a collective, so every rank calls it."""
    if world == 1:
        return [rng.bit_generator.state]
    states = [None] * world
    dist.all_gather_object(states, rng.bit_generator.state)
    return states


def _all_agree_out_of_time(mine: bool, world: int, device: str) -> bool:
    """Every rank stops at the same iteration, or a rank that stopped alone would leave the others hanging."""
    if world == 1:
        return mine
    flag = torch.tensor([int(mine)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _save_state(path: Path, generator, discriminator, opt_g, opt_d, training: dict) -> None:
    """Models, optimisers and ``training`` (iteration, seconds, settings, data fingerprint, random streams)."""
    state = {"generator": generator.state_dict(), "discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), **training}
    write_atomically(path, lambda tmp_path: torch.save(state, tmp_path))


def _export_is_stale(exported: Path, state_path: Path) -> bool:
    """True when the process died between the last state and its export (no generator, or an older one)."""
    return state_path.is_file() and (not exported.is_file() or exported.stat().st_mtime_ns < state_path.stat().st_mtime_ns)


def _cut_log(path: Path, last_iteration: int) -> None:
    """Drop rows after the checkpoint being resumed (the run logs them again), and any half-written row."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    kept = [row for row in rows if _logged_iteration(row) <= last_iteration]
    if len(kept) == len(rows):
        return
    if not kept:
        path.unlink()
        return
    write_atomically(path, lambda tmp_path: _write_log(Path(tmp_path), kept))


def _logged_iteration(row: dict) -> float:
    """The row's iteration; infinite for a row cut short by a killed process, so that it is always dropped."""
    try:
        return int(row["iteration"])
    except (KeyError, TypeError, ValueError):
        return math.inf


def _write_log(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _append_log(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
