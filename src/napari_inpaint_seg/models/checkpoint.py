"""Loading and saving generators as safetensors with their :class:`ModelConfig` in the metadata.

Only safetensors (or ``weights_only`` state dicts) are read, so a checkpoint can never run code.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import InputError
from .config import ModelConfig
from .generator import UNetGenerator

CONFIG_KEY = "napari_inpaint_seg.config"


def shipped_model_path(modality: str, gamma: int) -> Path:
    """Path of a default model inside the installed package."""
    return Path(str(resources.files("napari_inpaint_seg") / "weights" / f"{modality}_gamma{gamma}.safetensors"))


def shipped_models() -> list[tuple[str, int]]:
    """(modality, gamma) of every default model that ships with the package."""
    folder = Path(str(resources.files("napari_inpaint_seg") / "weights"))
    found = []
    for path in sorted(folder.glob("*_gamma*.safetensors")):
        modality, gamma = path.stem.split("_gamma")
        found.append((modality, int(gamma)))
    return found


def build_generator(config: ModelConfig) -> UNetGenerator:
    return UNetGenerator(base_channels=config.base_channels, depth=config.depth, downsample=config.downsample)


def save_generator(path: str | os.PathLike, generator: torch.nn.Module, config: ModelConfig) -> None:
    """Write weights and config; half precision would halve the size but costs accuracy, so float32 is kept."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tmp = f"{path}.part"
    try:
        save_file(tensors, tmp, metadata={CONFIG_KEY: config.to_json()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig]:
    """Rebuild a generator in eval mode from a safetensors file; every failure becomes an :class:`InputError`.

    The configuration is read and checked from the file's header before any weight is loaded.
    """
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise InputError(f"{path}: checkpoint not found")
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: only .safetensors checkpoints are loaded (pickles such as .pt/.pth can run code)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors checkpoint ({_first_line(exc)})") from exc
    if CONFIG_KEY not in metadata:
        raise InputError(f"{path}: checkpoint carries no napari-inpaint-seg configuration (not a model of this tool)")
    try:
        config = ModelConfig.from_json(metadata[CONFIG_KEY])
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: the checkpoint's configuration is malformed ({_first_line(exc)})") from exc
    problems = config.problems()
    if problems:
        raise InputError(f"{path}: unusable checkpoint configuration: {'; '.join(problems)}")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: the checkpoint's weights cannot be read ({_first_line(exc)})") from exc
    broken = [name for name, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise InputError(f"{path}: weights contain NaN or Inf ({broken[0]}{' and others' if len(broken) > 1 else ''}); the training diverged")
    generator = build_generator(config)
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not match the architecture in its configuration ({_first_line(exc)})") from exc
    return generator.to(device).eval(), config


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def load_model(model: str | os.PathLike | None, modality: str, gamma: int, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig]:
    """A checkpoint file if ``model`` is given, else the shipped default for (modality, gamma); checks gamma."""
    path = Path(model) if model else shipped_model_path(modality, gamma)
    if not model and not path.is_file():
        available = ", ".join(f"{m} gamma={g}" for m, g in shipped_models()) or "none"
        raise InputError(f"no shipped model for modality={modality} gamma={gamma} (shipped: {available})")
    generator, config = load_generator(path, device)
    if config.gamma != gamma:
        raise InputError(f"{path}: model was trained for gamma={config.gamma}, not gamma={gamma}; pass --gamma {config.gamma} or another model")
    if config.modality != modality:
        raise InputError(f"{path}: model was trained on {config.modality} scans, not {modality}")
    return generator, config
