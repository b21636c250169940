"""The overview picture: the labelled slices with the labels' outline over the scan, one PNG per scan, to check a
cohort's labels at a glance."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation, binary_erosion

from conftest import TOY_AFFINE, toy_volume
from napari_inpaint_seg.cli import main
from napari_inpaint_seg.overview import CAPTION_HEIGHT, COLUMNS, MAX_TILES, OUTLINE_RGB, TITLE_HEIGHT, grey_levels, overview_image, shown_slices


def segment(*args) -> int:
    return main(["segment", *map(str, args), "--modality", "flair", "--gamma", "8", "--device", "cpu", "--skull-stripped", "--min-contrast", "0"])


def red(picture: np.ndarray) -> np.ndarray:
    return np.all(picture == OUTLINE_RGB, axis=-1)


def tile(picture: np.ndarray, position: int, shape: tuple[int, int]) -> np.ndarray:
    """The slice drawn at ``position`` (row-major) of an overview of slices of ``shape``."""
    height, width = shape
    top = TITLE_HEIGHT + (position // COLUMNS) * (height + CAPTION_HEIGHT) + CAPTION_HEIGHT
    left = (position % COLUMNS) * width
    return picture[top: top + height, left: left + width]


def test_the_slices_shown_are_the_labelled_ones_spread_from_first_to_last():
    labels = np.zeros((8, 8, 40), bool)
    labels[2:5, 2:5, [3, 7, 9]] = True
    assert shown_slices(labels).tolist() == [3, 7, 9]
    labels[2:5, 2:5, 10:30] = True
    shown = shown_slices(labels)
    assert len(shown) == MAX_TILES and shown[0] == 3 and shown[-1] == 29 and labels[:, :, shown].any(axis=(0, 1)).all()
    assert shown_slices(np.zeros((8, 8, 40), bool)).tolist() == np.linspace(10, 29, MAX_TILES).round().astype(int).tolist()


def test_each_labelled_slice_is_drawn_with_its_outline_and_nothing_else_is_red():
    image = np.stack([toy_volume()[:, :, 0]] * 6, axis=2) * 1000
    labels = np.zeros(image.shape, bool)
    labels[10:20, 12:30, 1] = True
    labels[25:35, 5:15, 4] = True
    picture = overview_image(image, labels, "s")
    assert picture.dtype == np.uint8 and picture.shape == (TITLE_HEIGHT + CAPTION_HEIGHT + 48, 2 * 48, 3)
    first, second = tile(picture, 0, (48, 48)), tile(picture, 1, (48, 48))
    label = labels[:, :, 1]
    expected = binary_dilation(label) & ~binary_erosion(label)  # one pixel each side of the edge; inside, the tissue stays visible
    np.testing.assert_array_equal(red(first), expected)
    assert red(second).sum() == (2 * (10 + 10) - 4) + 2 * (10 + 10)  # the square's inner ring and its outer ring (no corners)
    assert red(picture).sum() == red(first).sum() + red(second).sum()
    inside = first[12:18, 14:28]
    assert (inside[..., 0] == inside[..., 1]).all() and inside.max() > 0  # grey, not painted over


def test_grey_levels_ignore_a_few_extreme_voxels_and_survive_nan_and_flat_scans():
    image = np.full((20, 20, 2), 100.0)
    image[5:15, 5:15] = 300.0
    image[0, 0, 0] = 1e6  # one bright artefact must not leave the brain dark
    image[1, 1, 1] = np.nan
    grey = grey_levels(image)
    assert grey[10, 10, 0] == 255 and grey[3, 3, 0] == 0 and grey[1, 1, 1] == 0
    assert grey_levels(np.zeros((4, 4, 1))).max() == 0 and grey_levels(np.full((4, 4, 1), 7.0)).dtype == np.uint8


@pytest.fixture
def scan(tmp_path):
    path = tmp_path / "sub-01.nii.gz"
    nib.save(nib.Nifti1Image(toy_volume(), TOY_AFFINE), str(path))
    return path


def test_a_title_wider_than_the_slices_is_not_cut():
    narrow = overview_image(np.ones((16, 16, 1)), np.zeros((16, 16, 1)), "a title much wider than one small slice")
    assert narrow.shape[1] > 16 * 4 and (narrow[:TITLE_HEIGHT, 16 * 4:] > 0).any()


def test_the_command_line_draws_the_labels_it_writes(scan, tiny_model, tmp_path, capsys):
    assert segment(scan, "--model", tiny_model, "--out", tmp_path / "labels.nii.gz", "--overview", tmp_path / "sub-01.png") == 0
    labels = np.asarray(nib.load(str(tmp_path / "labels.nii.gz")).dataobj) > 0
    picture = np.asarray(Image.open(tmp_path / "sub-01.png").convert("RGB"))
    shown = shown_slices(labels)
    assert labels.any() and len(shown) == labels.any(axis=(0, 1)).sum()
    for position, index in enumerate(shown):
        assert red(tile(picture, position, labels.shape[:2])).sum() > 0
    drawn = overview_image(toy_volume(), labels, "s")
    tiles = np.s_[TITLE_HEIGHT:, : len(shown) * labels.shape[1]]  # the title line's width follows the file name
    np.testing.assert_array_equal(red(picture)[tiles], red(drawn)[tiles])


def test_a_turned_scan_is_drawn_as_segmented(scan, tiny_model, tmp_path):
    stored = nib.load(str(scan))
    ras = stored.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(TOY_AFFINE), nib.orientations.axcodes2ornt("RAS")))
    nib.save(ras, str(tmp_path / "turned.nii.gz"))
    for name, path in (("as_trained", scan), ("turned", tmp_path / "turned.nii.gz")):
        assert segment(path, "--model", tiny_model, "--out", tmp_path / f"{name}_labels.nii.gz", "--overview", tmp_path / f"{name}.png") == 0
    tiles = np.s_[TITLE_HEIGHT:, : COLUMNS * stored.shape[1]]  # the title line's width follows the file name
    pictures = [np.asarray(Image.open(tmp_path / f"{name}.png").convert("RGB"))[tiles] for name in ("as_trained", "turned")]
    np.testing.assert_array_equal(*pictures)


def test_a_cohort_gets_one_picture_per_scan(scan, tiny_model, tmp_path):
    second = tmp_path / "sub-02.nii.gz"
    nib.save(nib.Nifti1Image(toy_volume(seed=1), TOY_AFFINE), str(second))
    out = tmp_path / "out"
    out.mkdir()
    assert segment(scan, second, "--model", tiny_model, "--out-dir", out, "--overviews") == 0
    assert sorted(path.name for path in out.glob("*.png")) == ["sub-01_overview.png", "sub-02_overview.png"]


@pytest.mark.parametrize("extra, message", [
    (["--overview", "{tmp}/sub-01.jpg"], "the overview is a PNG picture; use a .png file name"),
    (["--overview", "{tmp}/exists.png"], "exists.png: file exists; pass --force"),
    (["--overview", "{tmp}/missing/sub-01.png"], "output folder does not exist"),
    (["--overviews"], "--overviews and --skip-existing go with --out-dir"),
])
def test_an_overview_that_cannot_be_written_is_refused_before_any_work(scan, tiny_model, tmp_path, capsys, extra, message):
    (tmp_path / "exists.png").write_bytes(b"kept")
    assert segment(scan, "--model", tiny_model, "--out", tmp_path / "labels.nii.gz", *[part.format(tmp=tmp_path) for part in extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "labels.nii.gz").exists() and (tmp_path / "exists.png").read_bytes() == b"kept"


def test_overview_goes_with_one_scan_and_overviews_with_a_folder(scan, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert segment(scan, "--model", tiny_model, "--out-dir", out, "--overview", tmp_path / "x.png") == 2
    assert "--overview names one file; with --out-dir, --overviews writes each scan's beside its labels" in capsys.readouterr().err
