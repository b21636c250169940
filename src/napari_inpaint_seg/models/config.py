"""What a trained generator is: saved beside its weights so a checkpoint says how to rebuild and use it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from ..intensity import INTENSITY_CONVENTION

MODALITIES = ("t1", "flair")


@dataclass
class ModelConfig:
    """Architecture and usage of one inpainting generator (one per window side ``gamma``).

    ``context`` is the side of the square crop the generator was trained on, the hole in its middle; the
    network is fully convolutional, so the reference localizer can still run it on whole slices.
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

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (the input pooling times one halving per UNet level)."""
        return self.downsample * 2**self.depth

    def problems(self) -> list[str]:
        """What makes this configuration unusable (empty when it is fine); checked when a checkpoint is loaded."""
        found = []
        for name, low, high in (("gamma", 1, 1024), ("base_channels", 1, 512), ("depth", 1, 8), ("context", 1, 4096)):
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
        return found

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        """Inverse of :meth:`to_json`; unknown keys (from newer versions) are ignored. Raises ValueError if malformed."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def default_context(gamma: int, depth: int = 3, downsample: int = 2) -> int:
    """Crop side for training and the fast localizer: twice the hole, rounded up to the UNet stride."""
    stride = downsample * 2**depth
    return -(-2 * gamma // stride) * stride
