"""Where the networks run: the device a user names, checked, or the fastest one present for ``auto``."""

from __future__ import annotations

from .errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str) -> str:
    """``name`` itself when that device is present (a clear error, not torch's assertion, when not); for ``auto``
    CUDA, then Apple's MPS, then the CPU."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if name not in DEVICES:
        raise InputError(f"device {name!r} is not one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for, but no CUDA GPU is available")
    if name == "mps" and not mps:
        raise InputError("device mps was asked for, but no Apple GPU is available")
    return name
