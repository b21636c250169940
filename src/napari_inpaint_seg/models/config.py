"""What a trained generator is: saved beside its weights so a checkpoint says how to rebuild and use it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from ..intensity import INTENSITY_CONVENTION


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
    context: int = 64
    intensity: str = INTENSITY_CONVENTION
    iterations: int = 0
    data: str = ""
    code_version: str = ""
    notes: dict = field(default_factory=dict)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (one halving per UNet level)."""
        return 2**self.depth

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def default_context(gamma: int, depth: int = 3) -> int:
    """Crop side for training and the fast localizer: twice the hole, rounded up to the UNet stride."""
    stride = 2**depth
    return -(-2 * gamma // stride) * stride
