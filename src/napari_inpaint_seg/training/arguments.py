"""What the training and evaluation scripts share on their command line: argparse types that refuse a nonsense
number with argparse's usage line, before any data is read (0 iterations once claimed a generator that was never
written), the training slices' sources, and one way to report bad input.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def add_slice_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where healthy training slices come from (:func:`~.data.gather_slices`), as ``pack_slices.py`` and ``train.py``
    both take them, so a pack and a training run read the same sources under the same names."""
    parser.add_argument("--lgg", type=Path, help="folder in the LGG layout (PATIENT_t1pre/flair/mask.nii.gz); needs --patients")
    parser.add_argument("--patients", type=Path, help="text file, one LGG patient id per line (for T1: splits/lgg_train_t1.txt)")
    parser.add_argument(
        "--tumour-margin",
        type=positive_int,
        metavar="PIXELS",
        help="also take the tumour slices of the --lgg patients, with holes centred at least PIXELS from the tumour (gamma / 2 keeps the hole off it)",
    )
    parser.add_argument("--images", type=Path, help="folder of skull-stripped healthy 2D slices (PNG/JPEG/TIFF)")
    parser.add_argument("--volumes", type=Path, help="folder of healthy NIfTI volumes (brain-extracted here)")
    parser.add_argument("--cache", type=Path, default=Path(".cache/brain"), help="where brain masks are cached (default: %(default)s)")


def float_list(text: str) -> list[float]:
    """Comma-separated numbers, as the tuning scripts take their grids ("0.2,0.3")."""
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers separated by commas, got {text!r}") from None


def optional_float_list(text: str) -> list[float | None]:
    """:func:`float_list` where 'none' stands for a setting left unset ("none,0.4" -> [None, 0.4])."""
    try:
        return [None if value.strip() == "none" else float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers or 'none' separated by commas, got {text!r}") from None


@contextmanager
def input_errors_exit(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Bad input (an :class:`InputError`) inside ends the script as the CLI does: one line, ``PROG: error: ...``,
    exit status 2; never a traceback."""
    from ..cli import EXIT_INPUT_ERROR

    try:
        yield
    except InputError as exc:
        parser.exit(EXIT_INPUT_ERROR, f"{parser.prog}: error: {exc}\n")
