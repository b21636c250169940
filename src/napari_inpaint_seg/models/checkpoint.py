"""Loading and saving generators as safetensors with their :class:`ModelConfig` in the metadata.

Only safetensors (or ``weights_only`` state dicts) are read, so a checkpoint can never run code.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
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
    return UNetGenerator(base_channels=config.base_channels, depth=config.depth)


def save_generator(path: str | os.PathLike, generator: torch.nn.Module, config: ModelConfig) -> None:
    """Write weights and config; half precision would halve the size but costs accuracy, so float32 is kept."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tmp = f"{path}.part"
    save_file(tensors, tmp, metadata={CONFIG_KEY: config.to_json()})
    os.replace(tmp, path)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig]:
    """Rebuild a generator in eval mode from a safetensors file; every failure becomes an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: only .safetensors checkpoints are loaded (pickles can run code)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if CONFIG_KEY not in metadata:
        raise InputError(f"{path}: checkpoint carries no napari-inpaint-seg configuration")
    config = ModelConfig.from_json(metadata[CONFIG_KEY])
    generator = build_generator(config)
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not match the architecture in its configuration ({str(exc).splitlines()[0]})") from exc
    return generator.to(device).eval(), config


def load_model(model: str | os.PathLike | None, modality: str, gamma: int, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig]:
    """A checkpoint file if ``model`` is given, else the shipped default for (modality, gamma); checks gamma."""
    path = Path(model) if model else shipped_model_path(modality, gamma)
    if not model and not path.is_file():
        available = ", ".join(f"{m} gamma={g}" for m, g in shipped_models()) or "none"
        raise InputError(f"no shipped model for modality={modality} gamma={gamma} (shipped: {available})")
    generator, config = load_generator(path, device)
    if config.gamma != gamma:
        raise InputError(f"{path}: model was trained for gamma={config.gamma}, not gamma={gamma}")
    return generator, config
