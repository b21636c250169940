"""What a trained generator is: saved beside its weights so a checkpoint says how to rebuild and use it.

This module needs no torch: a checkpoint's configuration is read from the safetensors header with the JSON
parser alone, so a wrong or hostile file is refused before any tensor library touches it (and quickly).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from ..errors import InputError, first_line
from ..intensity import INTENSITY_CONVENTION

MODALITIES = ("t1", "flair")
CONFIG_KEY = "napari_inpaint_seg.config"
# safetensors itself refuses headers above 100 MB.
MAX_HEADER_BYTES = 100_000_000


@dataclass
class ModelConfig:
    """Architecture and usage of one inpainting generator (one per window side ``gamma``).

    ``context`` is the side of the square crop the generator was trained on, the hole in its middle; the
    network is fully convolutional, so the reference localizer can still run it on whole slices.
    ``decision``: the no-tumour decision calibrated for these weights (:mod:`~napari_inpaint_seg.calibration`),
    empty when there is none; the modality's tuned one then applies, which was tuned for the shipped model.
    """

    gamma: int = 32
    modality: str = "t1"
    base_channels: int = 16
    depth: int = 3
    downsample: int = 2
    context: int = 64
    intensity: str = INTENSITY_CONVENTION
    iterations: int = 0
    data: str = ""
    code_version: str = ""
    notes: dict = field(default_factory=dict)
    decision: dict = field(default_factory=dict)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (the input pooling times one halving per UNet level)."""
        return self.downsample * 2**self.depth

    def problems(self) -> list[str]:
        """What makes this configuration unusable (empty when it is fine); checked when a checkpoint is loaded."""
        found = []
        for name, low, high in (("gamma", 1, 1024), ("base_channels", 1, 512), ("depth", 1, 8), ("downsample", 1, 8), ("context", 1, 4096)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                found.append(f"{name}={value!r} is not an integer from {low} to {high}")
        if not found:
            if self.context < self.gamma:
                found.append(f"context={self.context} is smaller than gamma={self.gamma}")
            if self.context % self.stride:
                found.append(f"context={self.context} is not a multiple of the UNet stride {self.stride}")
        if self.modality not in MODALITIES:
            found.append(f"modality={self.modality!r} is not one of {', '.join(MODALITIES)}")
        if self.intensity != INTENSITY_CONVENTION:
            found.append(f"intensity convention {self.intensity!r} is not this version's {INTENSITY_CONVENTION!r}")
        if self.decision:
            found += decision_problems(self.decision)
        return found

    @property
    def decision_contrasts(self) -> tuple[float, float | None] | None:
        """(min_contrast, grow_contrast) of the stored decision, None without one."""
        if not self.decision:
            return None
        return float(self.decision["min_contrast"]), (None if self.decision.get("grow_contrast") is None else float(self.decision["grow_contrast"]))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        """Inverse of :meth:`to_json`; unknown keys (from newer versions) are ignored. Raises ValueError if malformed."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values.setdefault("downsample", 1)  # written before the field existed: the full-resolution UNet
        return cls(**values)


def decision_problems(decision: object) -> list[str]:
    """What makes a stored decision unusable: it needs a positive, finite ``min_contrast`` and, if any, a
    ``grow_contrast`` from 0 to below it (as :class:`~napari_inpaint_seg.segmentation.Selection` requires)."""
    if not isinstance(decision, dict):
        return [f"decision={decision!r} is not a JSON object"]
    low, grow = decision.get("min_contrast"), decision.get("grow_contrast")
    if not _finite_number(low) or low <= 0:
        return [f"decision's min_contrast={low!r} is not a positive number"]
    if grow is not None and (not _finite_number(grow) or not 0 <= grow < low):
        return [f"decision's grow_contrast={grow!r} is not a number from 0 to below min_contrast={low}"]
    return []


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def stored_decision(configs: Iterable[ModelConfig]) -> tuple[float, float | None] | None:
    """(min_contrast, grow_contrast) stored with the model when one model makes the heat; None otherwise, since a
    decision is calibrated on one model's heat and the fused heat of several is another."""
    configs = list(configs)
    return configs[0].decision_contrasts if len(configs) == 1 else None


def decision_caveat(paths: list[str | os.PathLike], configs: list[ModelConfig]) -> str | None:
    """Why the no-tumour decision may not fit the heat of these models, when it may not: a model of one's own without
    a decision calibrated for it takes the one tuned for the shipped model, and the heat fused from several models
    takes the modality's, whatever its models carry (:func:`stored_decision`)."""
    if len(configs) > 1:
        if any(config.decision for config in configs):
            return "the heat of several models is fused: their stored no-tumour decisions do not apply to it; the modality's tuned one does"
        return None
    if configs[0].decision or uses_shipped_model(paths):
        return None
    return (f"{paths[0]} carries no no-tumour decision of its own: the one tuned for the shipped model applies and may label healthy slices; "
            "calibrate one with training_scripts/calibrate_decision.py (docs/training.md)")


def default_context(gamma: int, depth: int = 3, downsample: int = 2) -> int:
    """Crop side for training and the fast localizer: twice the hole, rounded up to the UNet stride."""
    stride = downsample * 2**depth
    return -(-2 * gamma // stride) * stride


# The window of the shipped model that scored best on the validation patients (docs/results.md).
DEFAULT_GAMMA = 64


# Said wherever a user runs a shipped model of that modality (CLI, widget), since a label looks equally sure either
# way: on the held-out LGG patients the shipped T1-pre models' heat misses the lesion on most slices (docs/results.md).
SHIPPED_MODEL_CAVEATS = {
    "t1": "on T1-pre the shipped models' heat often misses a low-grade glioma (docs/results.md: the labels miss it on most "
    "held-out slices); check the labels, and segment the FLAIR scan where there is one; for a lesion that is not dark on "
    "T1-pre, use the error sign bright (--polarity bright)",
}


def uses_shipped_model(paths: Iterable[str | os.PathLike]) -> bool:
    """Whether any of ``paths`` is a shipped model: what is known of their training data holds for them only."""
    shipped = {shipped_model_path(m, gamma).resolve() for m, gamma in shipped_models()}
    return any(Path(path).resolve() in shipped for path in paths)


def shipped_model_caveat(paths: Iterable[str | os.PathLike], modality: str) -> str | None:
    """The caveat for ``modality`` if any of ``paths`` is a shipped model (a user's own model may do better)."""
    return SHIPPED_MODEL_CAVEATS.get(modality) if uses_shipped_model(paths) else None


def shipped_model_path(modality: str, gamma: int) -> Path:
    """Path of a default model inside the installed package."""
    return Path(str(resources.files("napari_inpaint_seg") / "weights" / f"{modality}_gamma{gamma}.safetensors"))


def shipped_models() -> list[tuple[str, int]]:
    """(modality, gamma) of every default model that ships with the package."""
    folder = Path(str(resources.files("napari_inpaint_seg") / "weights"))
    found = []
    for path in sorted(folder.glob("*_gamma*.safetensors")):
        modality, _, gamma = path.stem.partition("_gamma")
        if gamma.isdigit():  # other files (backups, experiments) are not default models
            found.append((modality, int(gamma)))
    return found


def checkpoint_config(path: str | os.PathLike) -> ModelConfig:
    """The checked configuration stored in a safetensors checkpoint; reads the header only (8-byte length, JSON).

    Raises :class:`InputError` for a missing file, a pickle (``.pt``/``.pth``: loading one can run code), a file
    that is not safetensors, one without this tool's configuration, or an unusable configuration.
    """
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise InputError(f"{path}: checkpoint not found")
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: only .safetensors checkpoints are loaded (pickles such as .pt/.pth can run code)")
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ValueError("file too short")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise ValueError("header too large")
            text = handle.read(length)
            if len(text) < length:
                raise ValueError("header truncated")
        header = json.loads(text.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except OSError as exc:
        raise InputError(f"{path}: not a readable safetensors checkpoint ({exc.strerror or exc})") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable safetensors checkpoint ({first_line(exc)})") from exc
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or CONFIG_KEY not in metadata:
        raise InputError(f"{path}: checkpoint carries no napari-inpaint-seg configuration (not a model of this tool)")
    try:
        config = ModelConfig.from_json(metadata[CONFIG_KEY])
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: the checkpoint's configuration is malformed ({first_line(exc)})") from exc
    problems = config.problems()
    if problems:
        raise InputError(f"{path}: unusable checkpoint configuration: {'; '.join(problems)}")
    return config


def resolve_model(model: str | os.PathLike | None, modality: str, gamma: int) -> tuple[Path, ModelConfig]:
    """The checkpoint to use (``model``, else the shipped default) and its configuration, checked against the
    requested modality and window; cheap, so front ends call it before any heavy work."""
    path = Path(model) if model else shipped_model_path(modality, gamma)
    if not model and not path.is_file():
        available = ", ".join(f"{m} gamma={g}" for m, g in shipped_models()) or "none"
        raise InputError(f"no shipped model for modality={modality} gamma={gamma} (shipped: {available})")
    config = checkpoint_config(path)
    if config.gamma != gamma:
        raise InputError(f"{path}: model was trained for gamma={config.gamma}, not gamma={gamma}; pass --gamma {config.gamma} or another model")
    if config.modality != modality:
        raise InputError(f"{path}: model was trained on {config.modality} scans, not {modality}")
    return path, config
