"""``inpaint-seg evaluate`` refuses bad input before it localises anyone: one stderr line, status 2, nothing
written, the user's files untouched (a run over the LGG patients takes hours, so a typo must not surface late)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_inpaint_seg.cli import main
from napari_inpaint_seg.training.data import read_patient_list


@pytest.fixture
def lgg(tmp_path, tiny_model_path):
    """Two patients in the LGG layout (tiny volumes; evaluate never gets as far as reading their voxels here)."""
    data = tmp_path / "lgg"
    data.mkdir()
    for patient in ("P1", "P2"):
        for suffix in ("t1pre", "mask"):
            nib.save(nib.Nifti1Image(np.zeros((16, 16, 8), np.float32), np.eye(4)), str(data / f"{patient}_{suffix}.nii.gz"))
    (tmp_path / "patients.txt").write_text("P1\nP2\n")
    return tmp_path, data, tiny_model_path


def evaluate(tmp_path: Path, data: Path, model: Path, *extra: str, patients: str = "patients.txt", json_name: str = "out.json") -> int:
    return main(["evaluate", "--data", str(data), "--patients", str(tmp_path / patients), "--modality", "t1", "--gamma", "8", "--model", str(model),
                 "--device", "cpu", "--json", str(tmp_path / json_name), *extra])


def refused(capsys, status: int, message: str) -> None:
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("inpaint-seg: error: "), lines
    assert message in lines[0], lines[0]


def test_a_patient_without_files_is_refused_before_any_work(lgg, capsys):
    tmp_path, data, model = lgg
    (tmp_path / "typo.txt").write_text("P1\nP2\nP3_typo\n")
    refused(capsys, evaluate(tmp_path, data, model, patients="typo.txt"), "typo.txt: P3_typo (P3_typo_t1pre.nii.gz is missing)")
    (tmp_path / "twice.txt").write_text("P1\nP2\nP1\n")  # P1 would count twice in every mean
    refused(capsys, evaluate(tmp_path, data, model, patients="twice.txt"), "listed more than once of")
    assert not (tmp_path / "out.json").exists()


def test_an_empty_patient_list_is_refused(lgg, capsys):
    tmp_path, data, model = lgg
    (tmp_path / "empty.txt").write_text("# nobody yet\n\n")
    refused(capsys, evaluate(tmp_path, data, model, patients="empty.txt"), "lists no patients")


def test_a_mask_of_another_shape_is_refused(lgg, capsys):
    tmp_path, data, model = lgg
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 9), np.float32), np.eye(4)), str(data / "P2_mask.nii.gz"))
    refused(capsys, evaluate(tmp_path, data, model), "patient 'P2': scan (16, 16, 8) and mask (16, 16, 9) differ in shape")


@pytest.mark.parametrize("input_name", ["patients.txt", "cache.npz"])
def test_the_json_may_not_replace_an_input_even_with_force(lgg, capsys, input_name):
    tmp_path, data, model = lgg
    before = (tmp_path / "patients.txt").read_bytes()
    status = evaluate(tmp_path, data, model, "--force", "--heatmap-cache", str(tmp_path / "cache.npz"), json_name=input_name)
    refused(capsys, status, "is also an input")
    assert (tmp_path / "patients.txt").read_bytes() == before


@pytest.mark.parametrize(
    "cache,content,message",
    [
        ("mycache", None, "give a name ending in .npz"),
        ("no/such/cache.npz", None, "folder of the heatmap cache does not exist"),
        ("garbage.npz", b"not an npz", "exists but is not a heatmap cache"),
        ("mine.npz", "someone else's arrays", "exists but is not a heatmap cache"),
    ],
)
def test_an_unusable_heatmap_cache_is_refused_before_any_work(lgg, capsys, cache, content, message):
    tmp_path, data, model = lgg
    path = tmp_path / cache
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.savez(path, image=np.zeros(3))
    before = path.read_bytes() if path.exists() else None
    refused(capsys, evaluate(tmp_path, data, model, "--heatmap-cache", str(path)), message)
    assert (path.read_bytes() if path.exists() else None) == before
    assert not (tmp_path / "out.json").exists()


def test_skull_stripped_is_not_an_option_of_evaluate(lgg, capsys):
    tmp_path, data, model = lgg
    with pytest.raises(SystemExit) as stop:
        evaluate(tmp_path, data, model, "--skull-stripped")
    assert stop.value.code == 2
    assert "unrecognized arguments: --skull-stripped" in capsys.readouterr().err


def test_a_patient_list_saved_with_a_byte_order_mark_reads_clean(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffTCGA_CS_4942_19970222\r\n# a comment\nTCGA_CS_4943_20000902\n".encode("utf-8"))
    assert read_patient_list(tmp_path / "bom.txt") == ["TCGA_CS_4942_19970222", "TCGA_CS_4943_20000902"]
