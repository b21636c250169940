"""What made a labels file, written beside it as JSON (a sidecar, as BIDS derivatives pair their files).

Labels outlive the run that made them: months later, a paper's methods section, a reviewer or a colleague asks which
model, which settings and which version of the tool drew them, and whether two folders of labels are comparable.
The command line knows all of it at the moment it writes the labels, so it writes it down then. Labels corrected by
hand and saved again from napari keep that record, which then says they were edited, when, and what they hold now.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .display import file_stem

TOOL_NAME = "napari-inpaint-seg"
NAPARI = "napari"  # a sidecar's MadeIn: exported from the Segment widget, not written by the command line


def sidecar_path(labels: Path) -> Path:
    """``labels.nii.gz`` -> ``labels.json``, beside it."""
    return labels.with_name(f"{file_stem(labels)}.json")


def file_sha256(path: Path) -> str:
    """The file's SHA-256: names exactly which weights were used, whatever the file is called now."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_record(path: Path, config, shipped: bool) -> dict:
    """One model: its file and hash, what its configuration says of its training, and the no-tumour decision
    calibrated for it (None: it carries none)."""
    return {"File": str(Path(path).resolve()), "SHA256": file_sha256(path), "Shipped": shipped, "Modality": config.modality, "Gamma": config.gamma,
            "Iterations": config.iterations, "TrainedOn": config.data, "TrainedWithVersion": config.code_version, "Decision": config.decision or None}


def now() -> str:
    """The moment, as the records write it: UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def generated_by() -> list[dict]:
    """BIDS's GeneratedBy: this tool and its version."""
    from . import __version__

    return [{"Name": TOOL_NAME, "Version": __version__}]


def run_record(command: list[str]) -> dict:
    """Which run made a file: the tool and its version, the command (``inpaint-seg`` and its arguments), the working
    directory its relative paths lead from, and when."""
    return {"GeneratedBy": generated_by(), "Command": ["inpaint-seg", *command], "WorkingDirectory": os.getcwd(), "Date": now()}


def labels_found(summary) -> dict:
    """What labels hold (:func:`~.cohort.label_summary`), as every record and edit states it."""
    return {"TumourVoxels": summary.voxels, "TumourMillilitres": None if summary.ml is None else round(summary.ml, 3), "LabelledSlices": summary.slices}


def localiser_record(*, fast: bool, device: str, polarity: str, gammas: list[int], step: int | None, refine_fraction: float | None) -> dict:
    """The localiser as it ran: path, fast path revision, each window's stride and fast-path settings as resolved
    (defaults included), number format, device and error sign; the same for the command line and the widget."""
    from .localizer import FAST_PATH_REVISION, fast_path_settings, heat_precision, step_for_window

    def window(gamma: int) -> dict:
        stride = step_for_window(gamma, step)
        settings = fast_path_settings(gamma, stride, refine_fraction)
        return {"Gamma": gamma, "Step": stride, **(settings if fast else dict.fromkeys(settings))}

    return {"Path": "fast" if fast else "reference", "FastPathRevision": FAST_PATH_REVISION if fast else None, "Windows": [window(gamma) for gamma in gammas],
            "Precision": heat_precision(fast, device), "Device": device, "ErrorSign": polarity}


def localiser_runs_after(runs: list[dict], run: dict, slices: list[int]) -> list[dict]:
    """The runs behind a heatmap layer after ``run`` (its models and settings) localised ``slices`` again: each
    earlier run keeps only the slices it still made, and is dropped when none is left. So the record names, for
    every slice, the settings of the heat it shows now."""
    redone = set(slices)
    kept = [{**earlier, "Slices": [index for index in earlier["Slices"] if index not in redone]} for earlier in runs]
    return [earlier for earlier in kept if earlier["Slices"]] + [{**run, "Slices": sorted(redone)}]


def napari_labels_record(*, scan: str | None, modality: str | None, localiser_runs: list[dict], felzenszwalb, selection, summary) -> dict:
    """The sidecar of labels exported from the Segment widget. They are made by hand as much as by settings (accepted
    candidates, Label all slices, painting), so it records what the session knew: the scan, the runs behind the
    heatmap each slice showed (:func:`localiser_runs_after`), and the Segment widget's settings at export."""
    return {
        "Description": "tumour labels exported from napari, made interactively with unsupervised inpainting-based segmentation",
        "GeneratedBy": generated_by(),
        "MadeIn": NAPARI,
        "Date": now(),
        "Sources": [str(Path(scan).resolve())] if scan else [],
        "Modality": modality,
        "LocaliserRuns": localiser_runs,
        "Superpixels": asdict(felzenszwalb),
        "SelectionAtExport": {**asdict(selection), "Description": selection.description},
        "Note": "accepted candidates, Label all slices and painting may each have drawn some of these labels; the settings are those in effect at export",
        **labels_found(summary),
    }


def this_tools_record(labels_path: Path) -> dict | None:
    """The sidecar beside ``labels_path`` if this tool wrote it; None if it is missing, not JSON or another tool's."""
    try:
        record = json.loads(sidecar_path(Path(labels_path)).read_text())
    except (OSError, ValueError):
        return None
    made_by = record.get("GeneratedBy") if isinstance(record, dict) else None
    if not isinstance(made_by, list) or not any(isinstance(entry, dict) and entry.get("Name") == TOOL_NAME for entry in made_by):
        return None
    return record


def sidecar_maker(labels_path: Path) -> str | None:
    """Who wrote the sidecar beside ``labels_path``: "command line" or NAPARI (this tool), "other" (a file this tool
    did not write, or not JSON), None (no sidecar)."""
    if not sidecar_path(Path(labels_path)).exists():
        return None
    record = this_tools_record(labels_path)
    return "other" if record is None else NAPARI if record.get("MadeIn") == NAPARI else "command line"


def labels_record(*, command: list[str], scan: Path, modality: str, models: list[dict], localiser: dict, felzenszwalb, selection,
                  geometry: dict, slices: list[int] | None, summary) -> dict:
    """The sidecar's content; keys in BIDS's CamelCase, settings under the names the command line uses."""
    return {
        "Description": "tumour labels (1) drawn by unsupervised inpainting-based segmentation",
        **run_record(command),
        "Sources": [str(Path(scan).resolve())],  # absolute: the sidecar may be read from anywhere, long after
        "Modality": modality,
        "Models": models,
        "Localiser": localiser,
        "Superpixels": asdict(felzenszwalb),
        "Selection": {**asdict(selection), "Description": selection.description},
        "Geometry": geometry,
        "Slices": "all" if slices is None else slices,
        **labels_found(summary),
    }


def write_sidecar(path: Path, record: dict) -> None:
    """The record as indented JSON, written atomically."""
    from .io import write_atomically

    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))


def record_edit(labels_path: Path, labels: np.ndarray, affine: np.ndarray | None, how: str) -> bool:
    """After labels were saved over a file the command line made (corrected in napari, say), its sidecar keeps what
    first made them and gains an entry under ``Edits``: when, how, and the volume they hold now; without it the
    record would vouch for voxels the settings never drew. A sidecar that is missing or not this tool's is left
    alone. Returns whether one was updated."""
    from . import __version__
    from .cohort import label_summary

    record = this_tools_record(labels_path)
    if record is None:
        return False
    record.setdefault("Edits", []).append({"Date": now(), "How": how, "Version": __version__, **labels_found(label_summary(labels, affine))})
    write_sidecar(sidecar_path(Path(labels_path)), record)
    return True
