"""Segmenting a cohort with one command: where each scan's outputs go, and the table of what was found.

A study segments dozens of scans; one command that goes on past a bad file, never overwrites without being asked,
and ends with one table (tumour volume per scan) is what a researcher runs and reads. The segmentation of each scan
is the single-scan command's (:func:`.cli.segment_scan`); this module only names, checks and summarises.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import numpy as np

from .errors import InputError

SUMMARY_NAME = "inpaint-seg-summary.csv"
SUMMARY_COLUMNS = ("scan", "modality", "labels", "tumour_voxels", "tumour_ml", "labelled_slices", "status")


@dataclass(frozen=True)
class LabelSummary:
    """What a radiologist reads off a label volume: how many voxels, how many millilitres (by the affine; None
    without voxel sizes), on how many axial slices."""

    voxels: int
    ml: float | None
    slices: int


def label_summary(labels: np.ndarray, affine: np.ndarray | None) -> LabelSummary:
    """For labels in file order: slices are counted along the axis the affine calls axial (2D images: 0 or 1)."""
    from .display import axial_axis, voxel_volume_ml  # nibabel: imported when a scan is done, not for --help

    labels = np.asarray(labels) > 0
    voxels = int(labels.sum())
    if labels.ndim != 3:
        return LabelSummary(voxels, None, int(labels.any()))
    axis = axial_axis(affine)
    ml_per_voxel = voxel_volume_ml(affine)
    slices = int(np.any(np.moveaxis(labels, axis, -1), axis=(0, 1)).sum())
    return LabelSummary(voxels, voxels * ml_per_voxel if ml_per_voxel else None, slices)


def output_paths(scans: list[Path], out_dir: Path, heatmaps: bool, overviews: bool = False) -> list[tuple[Path, Path | None, Path | None]]:
    """(labels, heatmap or None, overview or None) in ``out_dir`` for each scan: ``<stem>_labels.nii.gz``,
    ``<stem>_heatmap.nii.gz`` and ``<stem>_overview.png``.
    Two scans of one name (from different folders) would write one file: refused before any work."""
    from .display import file_stem

    seen: dict[str, Path] = {}
    for scan in scans:
        stem = file_stem(scan)
        if stem in seen and seen[stem].resolve() != scan.resolve():
            raise InputError(f"{seen[stem]} and {scan} would both write {stem}_labels.nii.gz; segment them into different --out-dir folders")
        if stem in seen:
            raise InputError(f"{scan} is given twice")
        seen[stem] = scan
    return [
        (out_dir / f"{stem}_labels.nii.gz", out_dir / f"{stem}_heatmap.nii.gz" if heatmaps else None, out_dir / f"{stem}_overview.png" if overviews else None)
        for stem in map(file_stem, scans)
    ]


def summary_row(scan: Path, modality: str | None, labels: Path, summary: LabelSummary | None, status: str) -> dict:
    return {"scan": str(scan), "modality": modality or "", "labels": str(labels) if summary else "",
            "tumour_voxels": summary.voxels if summary else "", "tumour_ml": f"{summary.ml:.3f}" if summary and summary.ml is not None else "",
            "labelled_slices": summary.slices if summary else "", "status": status}


def write_summary(path: Path, rows: list[dict]) -> None:
    """The table as CSV, replaced atomically: after every scan, so a batch cut short still has the table of what it did."""
    from .io import write_atomically

    text = StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text.getvalue()))
