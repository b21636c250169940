"""Loading and saving generators as safetensors with their :class:`ModelConfig` in the metadata.

Only safetensors (or ``weights_only`` state dicts) are read, so a checkpoint can never run code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import InputError, first_line
from ..io import current_umask
from .config import CONFIG_KEY, ModelConfig, checkpoint_config, resolve_model, shipped_model_path, shipped_models  # noqa: F401 (re-exported)
from .generator import UNetGenerator


def build_generator(config: ModelConfig) -> UNetGenerator:
    return UNetGenerator(base_channels=config.base_channels, depth=config.depth, downsample=config.downsample)


def save_generator(path: str | os.PathLike, generator: torch.nn.Module, config: ModelConfig) -> None:
    """Write weights and config; half precision would halve the size but costs accuracy, so float32 is kept."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tmp = f"{path}.part"
    try:
        save_file(tensors, tmp, metadata={CONFIG_KEY: config.to_json()})
        os.chmod(tmp, 0o666 & ~current_umask())  # safetensors writes 0600; a model is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def store_decision(path: str | os.PathLike, decision: dict) -> ModelConfig:
    """Write ``decision`` into the configuration of the checkpoint at ``path`` (the weights stay as they are) and
    return the new configuration; the file is replaced only once the new one is complete."""
    generator, config = load_generator(path)
    config = replace(config, decision=dict(decision))
    problems = config.problems()
    if problems:
        raise InputError(f"{path}: cannot store this decision: {'; '.join(problems)}")
    save_generator(path, generator, config)
    return config


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig]:
    """Rebuild a generator in eval mode from a safetensors file; every failure becomes an :class:`InputError`.

    The configuration is read and checked from the file's header (:func:`.config.checkpoint_config`) before
    any weight is loaded.
    """
    path = Path(path)
    config = checkpoint_config(path)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: the checkpoint's weights cannot be read ({first_line(exc)})") from exc
    broken = [name for name, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise InputError(f"{path}: weights contain NaN or Inf ({broken[0]}{' and others' if len(broken) > 1 else ''}); the training diverged")
    generator = build_generator(config)
    mismatch = _state_mismatch(generator.state_dict(), state)
    if mismatch:
        architecture = f"base_channels={config.base_channels}, depth={config.depth}, downsample={config.downsample}"
        raise InputError(f"{path}: weights do not match the architecture in its configuration ({architecture}): {mismatch}")
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not match the architecture in its configuration ({first_line(exc)})") from exc
    return generator.to(device).eval(), config


def _state_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """'' when ``given`` fits ``expected`` key for key and shape for shape; else a one-line summary."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(given) if tuple(expected[k].shape) != tuple(given[k].shape))
    if not (missing or unexpected or reshaped):
        return ""
    example = (missing or unexpected or reshaped)[0]
    return f"{len(missing)} missing, {len(unexpected)} unexpected and {len(reshaped)} differently shaped tensors, e.g. {example}"


def load_model(model: str | os.PathLike | None, modality: str, gamma: int, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig]:
    """A checkpoint file if ``model`` is given, else the shipped default for (modality, gamma); checks gamma and
    modality (:func:`.config.resolve_model`) before loading the weights."""
    path, _ = resolve_model(model, modality, gamma)
    return load_generator(path, device)
