"""What ``inpaint-seg segment`` does with bad input, one row per kind of problem (docs/robustness.md).

Every refusal is run as the user runs it, in a subprocess, and must end as exactly one stderr line starting
``inpaint-seg: error:`` with exit status 2: no traceback, no output file, no temporary file left behind.
The second table holds inputs that look odd but are valid and must not be refused.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from napari_inpaint_seg.cli import main
from napari_inpaint_seg.models.checkpoint import build_generator, save_generator
from napari_inpaint_seg.models.config import ModelConfig

TINY = dict(gamma=8, modality="t1", base_channels=4, depth=2, context=16)


@dataclass
class Run:
    """What one row hands to the command line; ``model`` None means the tiny valid model."""

    scan: Path
    model: Path | None = None
    out: Path | None = None
    extra: list[str] = field(default_factory=list)
    marker: Path | None = None  # a file that must never appear (a pickle payload's side effect)
    untouched: dict[Path, bytes] = field(default_factory=dict)  # files whose bytes must not change


def run_cli(tmp_path: Path, run: Run, default_model: Path) -> subprocess.CompletedProcess:
    out = run.out or tmp_path / "results" / "labels.nii.gz"
    command = [sys.executable, "-m", "napari_inpaint_seg.cli", "segment", str(run.scan), "--modality", "t1", "--gamma", "8",
               "--device", "cpu", "--model", str(run.model or default_model), "--out", str(out), *run.extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)


# --- inputs --------------------------------------------------------------------------------------------------


def written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def nifti(path: Path, data, affine=None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return path


def head_slice(size: int = 40) -> np.ndarray:
    """A skull-stripped 2D slice (textured disc on 0): single slices go through the foreground mask, not deepbet."""
    rows, cols = np.mgrid[:size, :size]
    disc = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (0.4 * size) ** 2
    texture = np.random.default_rng(0).uniform(0.6, 1.0, (size, size))
    return np.where(disc, texture, 0.0)


def truncated(tmp_path: Path, suffix: str) -> Path:
    data = np.random.default_rng(0).integers(-1000, 1000, (32, 32, 16)).astype(np.int16)  # incompressible
    path = nifti(tmp_path / f"cut{suffix}", data)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    return path


def huge_nifti(tmp_path: Path) -> Path:
    """A header claiming 4096^3 int16 voxels (128 GiB) followed by a few bytes: only the header is ever read."""
    header = nib.Nifti1Header()
    header.set_data_shape((4096, 4096, 4096))
    header.set_data_dtype(np.int16)
    header["vox_offset"] = 352
    path = tmp_path / "huge.nii"
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 64)
    return path


def huge_png(tmp_path: Path, side: int = 12000) -> Path:
    """A PNG whose header says side x side pixels, with almost no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def good_slice(tmp_path: Path) -> Path:
    return nifti(tmp_path / "slice.nii.gz", (head_slice() * 1000).astype(np.int16))


def saved_image(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def png(tmp_path: Path, image: np.ndarray, name: str = "slice.png") -> Path:
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / name)
    return tmp_path / name


# --- checkpoints ---------------------------------------------------------------------------------------------


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears if and only if the pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def tiny_checkpoint(path: Path, **overrides) -> Path:
    torch.manual_seed(0)
    architecture = ModelConfig(**TINY)
    save_generator(path, build_generator(architecture), ModelConfig(**{**TINY, **overrides}))
    return path


def pickle_checkpoint(tmp_path: Path, name: str, zip_format: bool) -> tuple[Path, Path]:
    marker = tmp_path / f"pwned_{name.replace('.', '_')}"
    path = tmp_path / name
    if zip_format:
        torch.save({"state_dict": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    return path, marker


# --- the matrix ----------------------------------------------------------------------------------------------

Row = Callable[[Path], Run]


def row_pickle(name: str, zip_format: bool) -> Row:
    def make(tmp_path: Path) -> Run:
        model, marker = pickle_checkpoint(tmp_path, name, zip_format)
        return Run(good_slice(tmp_path), model=model, marker=marker)

    return make


def row_existing_output(tmp_path: Path) -> Run:
    out = tmp_path / "results" / "labels.nii.gz"
    out.write_bytes(b"yesterday's labels")
    return Run(good_slice(tmp_path), out=out, untouched={out: out.read_bytes()})


def row_output_is_input(tmp_path: Path) -> Run:
    scan = good_slice(tmp_path)
    return Run(scan, out=scan, extra=["--force"], untouched={scan: scan.read_bytes()})


def row_read_only_folder(tmp_path: Path) -> Run:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        return Run(good_slice(tmp_path), out=folder / "labels.nii.gz")
    (folder / "probe").unlink()
    folder.chmod(0o755)
    pytest.skip("running as root (or on a file system that ignores permissions): a chmod 555 folder is still writable")


def row_system_folder(tmp_path: Path) -> Run:
    folder = Path("/sys")
    try:
        fd = os.open(folder / ".inpaint-seg-test", os.O_CREAT | os.O_WRONLY)
    except OSError:
        return Run(good_slice(tmp_path), out=folder / "labels.nii.gz")
    os.close(fd)
    os.unlink(folder / ".inpaint-seg-test")
    pytest.skip("/sys is writable here; no folder is known to refuse writes")


def row_unreadable_checkpoint(tmp_path: Path) -> Run:
    model = tiny_checkpoint(tmp_path / "locked.safetensors")
    model.chmod(0)
    try:
        model.read_bytes()
    except OSError:
        return Run(good_slice(tmp_path), model=model)
    model.chmod(0o644)
    pytest.skip("running as root: a chmod 000 file is still readable")


def row_no_config(tmp_path: Path) -> Run:
    model = tmp_path / "other_tool.safetensors"
    save_file({"conv.weight": torch.zeros(4, 2, 3, 3)}, str(model))
    return Run(good_slice(tmp_path), model=model)


REFUSED: dict[str, tuple[Row, str]] = {
    # the scan file
    "not-a-nifti": (lambda t: Run(written(t / "notes.txt", b"hello")), "not a NIfTI"),
    "garbage-named-nifti": (lambda t: Run(written(t / "x.nii.gz", os.urandom(2000))), "not a readable NIfTI"),
    "folder-as-scan": (lambda t: Run(t), "is a folder"),
    "missing-scan": (lambda t: Run(t / "nowhere.nii.gz"), "no such file"),
    "truncated-nii.gz": (lambda t: Run(truncated(t, ".nii.gz")), "truncated or corrupt"),
    "truncated-nii": (lambda t: Run(truncated(t, ".nii")), "truncated or corrupt"),
    # shapes and sizes
    "4d-series": (lambda t: Run(nifti(t / "series.nii.gz", np.ones((16, 16, 16, 3), np.float32))), "split the series into 3D volumes"),
    "1d-nifti": (lambda t: Run(nifti(t / "line.nii.gz", np.ones(100, np.float32))), "expected a 3D volume or a 2D slice"),
    "single-slice-volume": (lambda t: Run(nifti(t / "one.nii.gz", head_slice()[:, :, None].astype(np.float32))), "too thin for brain extraction"),
    "slice-smaller-than-gamma": (lambda t: Run(png(t, head_slice(6))), "smaller than the window gamma=8"),
    "huge-nifti-header": (lambda t: Run(huge_nifti(t)), "too large (about 1374.4 GB"),
    "huge-png-header": (lambda t: Run(huge_png(t)), "too large"),
    # voxel values and types
    "all-zero": (lambda t: Run(nifti(t / "zero.nii.gz", np.zeros((16, 16, 16), np.float32))), "empty (every voxel is 0)"),
    "all-nan": (lambda t: Run(nifti(t / "nan.nii.gz", np.full((16, 16, 16), np.nan, np.float32))), "100% of voxels are NaN or Inf"),
    "mostly-inf": (lambda t: Run(nifti(t / "inf.nii.gz", np.where(np.arange(4096).reshape(16, 16, 16) % 4, np.inf, 1).astype(np.float32))), "75% of voxels are NaN or Inf"),
    "complex-voxels": (lambda t: Run(nifti(t / "complex.nii.gz", np.ones((16, 16, 16), np.complex64))), "not supported"),
    "rgb-voxels": (lambda t: Run(nifti(t / "rgb.nii.gz", np.zeros((16, 16, 16), [("R", "u1"), ("G", "u1"), ("B", "u1")]))), "not supported"),
    "slice-out-of-range": (lambda t: Run(good_slice(t), extra=["--slices", "3"]), "slice 3 is outside the scan (its slices are numbered 0 to 0)"),
    # method settings
    "merge-ratio-above-1": (lambda t: Run(good_slice(t), extra=["--merge-ratio", "1.5"]), "--merge-ratio must lie between 0 and 1"),
    "negative-min-contrast": (lambda t: Run(good_slice(t), extra=["--min-contrast", "-1"]), "--min-contrast must be at least 0"),
    "negative-grow-contrast": (lambda t: Run(good_slice(t), extra=["--grow-contrast", "-1"]), "--grow-contrast must be at least 0"),
    "negative-heat-sigma": (lambda t: Run(good_slice(t), extra=["--heat-sigma", "-2"]), "--heat-sigma must be at least 0"),
    "step-above-the-window": (lambda t: Run(good_slice(t), extra=["--step", "9"]), "--step 9 is larger than the window --gamma 8"),
    "negative-refine-radius": (lambda t: Run(good_slice(t), extra=["--refine-radius", "-5"]), "--refine-radius must be at least 0"),
    "negative-volume-radius": (lambda t: Run(good_slice(t), extra=["--volume-radius", "-1"]), "--volume-radius must be at least 0"),
    "component-share-above-1": (lambda t: Run(good_slice(t), extra=["--min-component-share", "1.5"]), "--min-component-share must lie between 0 and 1"),
    "component-share-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--min-component-share", "0.5"]), "min component share apply to --mode merge"),
    "grown-share-above-1": (lambda t: Run(good_slice(t), extra=["--min-grown-share", "1.5"]), "--min-grown-share must lie between 0 and 1"),
    "grown-share-nan": (lambda t: Run(good_slice(t), extra=["--min-grown-share", "nan"]), "--min-grown-share must be a finite number, got nan"),
    "grown-share-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--min-grown-share", "0.5"]), "min grown share apply to --mode merge"),
    "end-weight-above-1": (lambda t: Run(good_slice(t), extra=["--end-weight", "1.5"]), "--end-weight must lie between 0 and 1"),
    "negative-run-contrast": (lambda t: Run(good_slice(t), extra=["--run-contrast", "-1"]), "--run-contrast must be at least 0"),
    "run-contrast-nan": (lambda t: Run(good_slice(t), extra=["--run-contrast", "nan"]), "--run-contrast must be a finite number, got nan"),
    "run-of-no-slices": (lambda t: Run(good_slice(t), extra=["--run-length", "0"]), "--run-length must be at least 1, got 0"),
    "carry-share-above-1": (lambda t: Run(good_slice(t), extra=["--carry-share", "1.5"]), "--carry-share must lie between 0 and 1"),
    "carry-share-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--carry-share", "0.5"]), "carry share apply to --mode merge"),
    "end-weight-nan": (lambda t: Run(good_slice(t), extra=["--end-weight", "nan"]), "--end-weight must be a finite number, got nan"),
    "follow-share-above-1": (lambda t: Run(good_slice(t), extra=["--follow-share", "1.5"]), "--follow-share must lie between 0 and 1"),
    "follow-share-nan": (lambda t: Run(good_slice(t), extra=["--follow-share", "nan"]), "--follow-share must be a finite number, got nan"),
    "follow-share-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--follow-share", "0.5"]), "follow share apply to --mode merge"),
    "small-slices-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--grow-into-small-slices"]), "grow into small slices apply to --mode merge"),
    "end-weight-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--end-weight", "0.5"]), "end weight apply to --mode merge"),
    "dark-share-of-1": (lambda t: Run(good_slice(t), extra=["--dark-share", "1"]), "--dark-share must lie from 0 up to (not including) 1"),
    "dark-share-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--dark-share", "0.1"]), "dark share apply to --mode merge"),
    "negative-dark-margin": (lambda t: Run(good_slice(t), extra=["--dark-margin", "-1"]), "--dark-margin must be at least 0"),
    "dark-margin-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--dark-margin", "1"]), "dark margin apply to --mode merge"),
    "negative-label-sigma": (lambda t: Run(good_slice(t), extra=["--label-sigma", "-1"]), "--label-sigma must be at least 0"),
    "label-sigma-slices-nan": (lambda t: Run(good_slice(t), extra=["--label-sigma-slices", "nan"]), "--label-sigma-slices must be a finite number, got nan"),
    "label-sigma-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--label-sigma", "3"]), "label sigma apply to --mode merge"),
    "refine-fraction-above-1": (lambda t: Run(good_slice(t), extra=["--refine-fraction", "1.5"]), "--refine-fraction must lie between 0 and 1"),
    "refine-fraction-with-reference": (lambda t: Run(good_slice(t), extra=["--refine-fraction", "0.7", "--reference"]), "--reference runs every window anyway"),
    "merge-settings-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--merge-ratio", "0.3"]), "apply to --mode merge"),
    "refinement-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--refine-radius", "10"]), "refine radius apply to --mode merge"),
    "volume-redraw-in-paper-mode": (lambda t: Run(good_slice(t), extra=["--mode", "paper", "--volume-radius", "5"]), "volume radius apply to --mode merge"),
    "unknown-polarity": (lambda t: Run(good_slice(t), extra=["--polarity", "up"]), "argument --polarity: invalid choice: 'up'"),
    "gamma-list-with-one-model": (lambda t: Run(good_slice(t), extra=["--gamma", "8,16"]), "give one per window"),
    # the checkpoint
    "missing-checkpoint": (lambda t: Run(good_slice(t), model=t / "nowhere.safetensors"), "checkpoint not found"),
    "folder-as-checkpoint": (lambda t: Run(good_slice(t), model=t / "results"), "checkpoint not found"),
    "empty-checkpoint": (lambda t: Run(good_slice(t), model=written(t / "empty.safetensors", b"")), "not a readable safetensors"),
    "unreadable-checkpoint": (row_unreadable_checkpoint, "not a readable safetensors"),
    "checkpoint-of-another-tool": (row_no_config, "no napari-inpaint-seg configuration"),
    "checkpoint-other-architecture": (lambda t: Run(good_slice(t), model=tiny_checkpoint(t / "deeper.safetensors", depth=3)), "do not match the architecture in its configuration (base_channels=4, depth=3"),
    "checkpoint-other-gamma": (lambda t: Run(good_slice(t), model=tiny_checkpoint(t / "g16.safetensors", gamma=16)), "trained for gamma=16, not gamma=8"),
    "checkpoint-unusable-config": (lambda t: Run(good_slice(t), model=tiny_checkpoint(t / "odd.safetensors", context=20)), "unusable checkpoint configuration: context=20 is not a multiple of the UNet stride 8"),
    "checkpoint-other-modality": (lambda t: Run(good_slice(t), model=tiny_checkpoint(t / "flair.safetensors", modality="flair")), "trained on flair scans, not t1"),
    "pickle-as-.pt": (row_pickle("evil.pt", zip_format=True), "only .safetensors checkpoints"),
    "raw-pickle-renamed-.safetensors": (row_pickle("evil.safetensors", zip_format=False), "not a readable safetensors"),
    "torch-zip-renamed-.safetensors": (row_pickle("evil_zip.safetensors", zip_format=True), "not a readable safetensors"),
    # the output
    "output-folder-missing": (lambda t: Run(good_slice(t), out=t / "no" / "such" / "labels.nii.gz"), "output folder does not exist"),
    "output-under-a-file": (lambda t: Run(good_slice(t), out=t / "slice.nii.gz" / "labels.nii.gz"), "is a file, not a folder"),
    "output-read-only-folder": (row_read_only_folder, "not writable"),
    "output-system-folder": (row_system_folder, "not writable"),
    "output-exists-without-force": (row_existing_output, "file exists; pass --force"),
    "output-not-nifti": (lambda t: Run(good_slice(t), out=t / "results" / "labels.png"), "written as NIfTI"),
    "output-is-the-scan": (row_output_is_input, "is also an input"),
}


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "results").mkdir()
    model = tiny_checkpoint(tmp_path / "tiny.safetensors")
    return tmp_path, model


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".part" in p.name or p.name.startswith(".inpaint-seg-probe")]


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_one_line(workspace, name):
    tmp_path, model = workspace
    make, message = REFUSED[name]
    run = make(tmp_path)
    before = set(p for p in tmp_path.rglob("*"))
    result = run_cli(tmp_path, run, model)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("inpaint-seg: error: "), result.stderr
    assert message in lines[0], lines[0]
    assert result.stdout == ""
    assert set(p for p in tmp_path.rglob("*")) == before, "a file was created"
    assert not leftovers(tmp_path)
    for path, content in run.untouched.items():
        assert path.read_bytes() == content
    if run.marker is not None:
        assert not run.marker.exists(), "the pickle in the checkpoint was executed"
        # The payload is live: loading the file the unsafe way does create the marker, so the check above can fail.
        if run.model.read_bytes()[:2] == b"PK":
            control = tmp_path / "control.pt"  # torch.load hands *.safetensors names to safetensors
            control.write_bytes(run.model.read_bytes())
            torch.load(control, weights_only=False)
        else:
            pickle.loads(run.model.read_bytes())
        assert run.marker.exists()


WORKS: dict[str, Callable[[Path], Path]] = {
    "negative-float64": lambda t: nifti(t / "neg.nii.gz", head_slice() * 300.0 - 1000.0),
    "int16": lambda t: nifti(t / "i16.nii.gz", (head_slice() * 3000).astype(np.int16)),
    "negative-int16": lambda t: nifti(t / "ni16.nii.gz", (head_slice() * 3000 - 2000).astype(np.int16)),
    "float64-tiny-values": lambda t: nifti(t / "tiny.nii.gz", head_slice() * 1e-30),
    "a-few-nan-and-inf": lambda t: nifti(t / "nan.nii.gz", np.where(np.eye(40, dtype=bool), np.nan, head_slice()).astype(np.float32)),
    "2d-nifti-oblique": lambda t: nifti(t / "obl.nii.gz", head_slice().astype(np.float32), np.array([[0, -1.2, 0, 5], [0.9, 0, 0, 7], [0, 0, 3, 1], [0, 0, 0, 1.0]])),
    "rgba-png": lambda t: saved_image(t / "rgba.png", np.dstack([np.round(head_slice() * 255).astype(np.uint8)] * 3 + [np.full((40, 40), 255, np.uint8)])),
    "grey-alpha-png": lambda t: saved_image(t / "la.png", np.dstack([np.round(head_slice() * 255).astype(np.uint8), np.full((40, 40), 255, np.uint8)])),
    "16-bit-png": lambda t: saved_image(t / "u16.png", (head_slice() * 60000).astype(np.uint16)),
}


@pytest.mark.parametrize("name", list(WORKS))
def test_odd_but_valid_input_works(workspace, name, capsys):
    """Run in-process (the refusals above cover the process boundary; this keeps the suite fast)."""
    tmp_path, model = workspace
    scan = WORKS[name](tmp_path)
    out = tmp_path / "results" / "labels.nii.gz"
    # --min-contrast 0: every slice answers, so an empty label can only mean the brain was not found.
    status = main(["segment", str(scan), "--modality", "t1", "--gamma", "8", "--device", "cpu", "--model", str(model), "--out", str(out), "--min-contrast", "0"])
    assert status == 0, capsys.readouterr().err
    labels = nib.load(str(out))
    assert labels.shape == (40, 40)
    assert np.asarray(labels.dataobj).any(), "the brain was not found"
    if scan.name.endswith(".nii.gz"):
        np.testing.assert_array_equal(labels.affine, nib.load(str(scan)).affine)
    assert not leftovers(tmp_path)


def test_refusals_before_the_model_do_not_load_torch(workspace):
    """File, output and checkpoint-header problems are reported before torch is imported (about 2 s saved)."""
    tmp_path, model = workspace
    bad_model = tiny_checkpoint(tmp_path / "g16.safetensors", gamma=16)
    code = (
        "import sys; from napari_inpaint_seg.cli import main; "
        f"status = main(['segment', {str(good_slice(tmp_path))!r}, '--modality', 't1', '--gamma', '8', '--model', {str(bad_model)!r}, "
        f"'--out', {str(tmp_path / 'results' / 'labels.nii.gz')!r}]); "
        "assert status == 2; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "trained for gamma=16" in result.stderr


def test_the_modality_may_come_from_the_file_name_and_only_from_a_name_that_states_it(workspace, capsys):
    """``--modality`` may be left out for a BIDS-named scan (``_T1w``); a name that states nothing is refused."""
    tmp_path, model = workspace
    out = tmp_path / "labels.nii.gz"
    unnamed = good_slice(tmp_path)
    assert main(["segment", str(unnamed), "--gamma", "8", "--device", "cpu", "--model", str(model), "--out", str(out)]) == 2
    assert "say which sequence it is with --modality" in capsys.readouterr().err and not out.exists()
    bids = unnamed.rename(tmp_path / "sub-01_T1w.nii.gz")
    assert main(["segment", str(bids), "--gamma", "8", "--device", "cpu", "--model", str(model), "--out", str(out), "--min-contrast", "0"]) == 0
    assert "modality t1, as the file name states" in capsys.readouterr().err and out.exists()
