"""``inpaint-seg segment`` on a cohort: one labels file per scan in --out-dir, a table of volumes, bad scans reported
while the others go on, nothing overwritten unless asked."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.cohort import SUMMARY_NAME, label_summary, output_paths
from napari_inpaint_seg.display import file_stem
from napari_inpaint_seg.errors import InputError


def run(*args) -> int:
    return main(["segment", *map(str, args), "--modality", "flair", "--gamma", "8", "--device", "cpu", "--skull-stripped", "--min-contrast", "0"])


@pytest.fixture
def cohort(tmp_path):
    """Two toy scans and one broken file, and an empty output folder."""
    scans = []
    for name, seed in (("sub-01", 0), ("sub-02", 1)):
        path = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(toy_volume(seed=seed), TOY_AFFINE), str(path))
        scans.append(path)
    broken = tmp_path / "sub-03.nii.gz"
    broken.write_bytes(b"not a NIfTI file")
    out = tmp_path / "labels"
    out.mkdir()
    return scans + [broken], out


def table(folder):
    with open(folder / SUMMARY_NAME, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_cohort_is_labelled_scan_by_scan_and_a_bad_scan_does_not_stop_it(cohort, tiny_model, capsys):
    scans, out = cohort
    assert run(*scans, "--model", tiny_model, "--out-dir", out, "--heatmaps") == 2  # one scan failed
    assert "1 of 3 scans failed; the others are labelled" in capsys.readouterr().err
    rows = table(out)
    assert [row["status"] for row in rows[:2]] == ["segmented", "segmented"] and rows[2]["status"].startswith("failed: ")
    for scan, row in zip(scans[:2], rows):
        labels = nib.load(str(out / f"{file_stem(scan)}_labels.nii.gz"))
        assert (out / f"{file_stem(scan)}_heatmap.nii.gz").is_file()
        np.testing.assert_allclose(labels.affine, TOY_AFFINE)
        voxels = int(np.asarray(labels.dataobj).sum())
        assert voxels > 0 and int(row["tumour_voxels"]) == voxels and row["modality"] == "flair"
        assert float(row["tumour_ml"]) == pytest.approx(voxels * 0.9 * 1.1 * 3.0 / 1000, abs=1e-3)
    assert not (out / "sub-03_labels.nii.gz").exists()


def test_a_second_run_overwrites_nothing_unless_asked_and_can_skip_what_is_done(cohort, tiny_model, capsys):
    scans, out = cohort
    run(*scans[:2], "--model", tiny_model, "--out-dir", out)
    first = table(out)
    written = (out / "sub-01_labels.nii.gz").stat().st_mtime_ns
    assert run(*scans[:2], "--model", tiny_model, "--out-dir", out) == 2  # refused before any work
    assert "file exists; pass --force" in capsys.readouterr().err
    assert run(*scans[:2], "--model", tiny_model, "--out-dir", out, "--skip-existing") == 0
    assert (out / "sub-01_labels.nii.gz").stat().st_mtime_ns == written
    again = table(out)
    assert [row["status"] for row in again] == ["skipped: labels exist"] * 2
    assert [(row["tumour_voxels"], row["tumour_ml"], row["labelled_slices"]) for row in again] == [
        (row["tumour_voxels"], row["tumour_ml"], row["labelled_slices"]) for row in first]


@pytest.mark.parametrize("extra, message", [
    (["--out", "x.nii.gz"], "2 scans given: write their labels into a folder with --out-dir"),
    (["--out-dir", "{out}", "--heatmap-out", "h.nii.gz"], "--heatmap-out names one file"),
    (["--out-dir", "{out}/missing"], "output folder does not exist"),
    (["--out-dir", "{out}", "--model", "{out}/nowhere.safetensors"], "nowhere.safetensors: checkpoint not found"),  # not once per scan
])
def test_cohort_arguments_that_cannot_work_are_refused_at_once(cohort, tiny_model, capsys, extra, message):
    scans, out = cohort
    model = [] if "--model" in extra else ["--model", tiny_model]
    assert run(*scans[:2], *model, *[part.format(out=out) for part in extra]) == 2
    printed = capsys.readouterr().err
    assert message in printed and "[1/2]" not in printed
    assert not any(out.iterdir())


def test_two_scans_of_one_name_would_write_one_file(tmp_path):
    with pytest.raises(InputError, match="would both write sub-01_labels.nii.gz"):
        output_paths([tmp_path / "a" / "sub-01.nii.gz", tmp_path / "b" / "sub-01.nii.gz"], tmp_path, heatmaps=False)
    labels, heatmap, overview = output_paths([tmp_path / "sub-02_T1w.nii"], tmp_path, heatmaps=True, overviews=True)[0]
    assert (labels.name, heatmap.name, overview.name) == ("sub-02_T1w_labels.nii.gz", "sub-02_T1w_heatmap.nii.gz", "sub-02_T1w_overview.png")
    assert output_paths([tmp_path / "sub-02_T1w.nii"], tmp_path, heatmaps=False)[0][1:] == (None, None)


def test_a_label_summary_counts_slices_along_the_axial_axis():
    axial_first = np.array([[0, 1.0, 0, 0], [0, 0, 1.2, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]])  # array axis 0 runs inferior-superior
    labels = np.zeros((6, 20, 24), np.uint8)
    labels[2:4, 5:8, 5:9] = 1
    summary = label_summary(labels, axial_first)
    assert (summary.voxels, summary.slices) == (24, 2) and summary.ml == pytest.approx(24 * 3.0 / 1000)
    assert label_summary(labels[0], None).ml is None
