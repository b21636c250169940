"""Screenshots for docs/user_guide.md, made by driving napari exactly as a user would (run under a display).

    xvfb-run -a python docs/make_screenshots.py [--model CHECKPOINT] [--out docs/images]

The scan is the FLAIR of validation patient TCGA_HT_7882_19970125 from ../shared/data/lgg (the slice with the
largest tumour area); without that folder, the MNI152 template with a synthetic lesion is used instead. The model
is ``--model``, else ``$INPAINT_SEG_SCREENSHOT_MODEL``, else the shipped model for the modality. Jobs run inline
(``NAPARI_INPAINT_SEG_SYNC=1``) so every picture shows a finished step.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PATIENT = "TCGA_HT_7882_19970125"
WINDOW = (1500, 950)


def lgg_files() -> tuple[Path, Path] | None:
    folder = Path(os.environ.get("INPAINT_SEG_DATA", REPO.parent / "shared" / "data")) / "lgg"
    scan, mask = folder / f"{PATIENT}_flair.nii.gz", folder / f"{PATIENT}_mask.nii.gz"
    return (scan, mask) if scan.is_file() and mask.is_file() else None


def save(viewer, path: Path) -> None:
    from qtpy.QtWidgets import QApplication
    from skimage.io import imsave

    for _ in range(5):
        QApplication.processEvents()
    imsave(str(path), viewer.screenshot(canvas_only=False, flash=False), check_contrast=False)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=os.environ.get("INPAINT_SEG_SCREENSHOT_MODEL"), help="checkpoint (default: shipped)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    os.environ["NAPARI_INPAINT_SEG_SYNC"] = "1"
    args.out.mkdir(parents=True, exist_ok=True)

    # A throw-away settings file, so that hiding warning pop-ups (e.g. napari's PyQt5 notice) in the pictures
    # does not change the user's own napari settings.
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")
    import napari
    import nibabel as nib
    from napari.settings import get_settings

    get_settings().application.gui_notification_level = "error"

    from napari_inpaint_seg import launcher
    from napari_inpaint_seg._sample_data import mni152_synthetic_lesion_scan
    from napari_inpaint_seg.display import MODALITY, SKULL_STRIPPED, image_layer_data, to_display

    files = lgg_files()
    if files is not None:
        scan_path, mask_path = files
        launch = launcher.build_parser().parse_args([str(scan_path), "--modality", "flair"] + (["--model", str(args.model)] if args.model else []))
        layer_data = launcher.read_arguments(launch)
        truth = to_display(np.asarray(nib.load(str(mask_path)).dataobj) > 0, 2)
    else:
        print("../shared/data/lgg not found: using the MNI152 template with a synthetic lesion", file=sys.stderr)
        launch = launcher.build_parser().parse_args(["--modality", "t1"] + (["--model", str(args.model)] if args.model else []))
        scan, mask = mni152_synthetic_lesion_scan()
        layer_data = image_layer_data(scan, name="MNI152 T1 + synthetic lesion", **{SKULL_STRIPPED: True, MODALITY: "t1"})
        truth = to_display(mask, 2)

    viewer = napari.Viewer(title="napari-inpaint-seg")
    viewer.window.resize(*WINDOW)
    viewer, localize, segment = launcher.open_viewer(launch, layer_data, viewer=viewer)
    image = viewer.layers[0]
    from napari_inpaint_seg.models.config import checkpoint_config

    for path in localize.model_paths():
        config = checkpoint_config(path)
        print(f"model: {path} ({config.modality}, gamma={config.gamma}, {config.iterations} iterations)")
    index = int(np.argmax(truth.sum(axis=(1, 2))))
    viewer.dims.set_current_step(0, index)
    viewer.reset_view()
    save(viewer, args.out / "01_opened.png")

    localize.run()  # current slice, fast localiser, brain extraction with deepbet
    segment.refresh()  # what the debounce timer does 200 ms after the heatmap is complete
    overlays = [viewer.layers[f"{image.name} {role}"] for role in ("superpixels", "candidate")]
    for layer in overlays:
        layer.visible = False
    save(viewer, args.out / "02_heatmap.png")
    for layer in overlays:
        layer.visible = True
    save(viewer, args.out / "03_candidates.png")

    # The user accepts the top candidate when it covers the lesion's centre (here: of the reference mask);
    # otherwise clicks that centre first, as one would to correct the method.
    from napari_inpaint_seg.metrics import dice

    rows, cols = np.nonzero(truth[index])
    centre = (int(np.median(rows)), int(np.median(cols)))
    print(f"top candidate: Dice {dice(segment.candidate_mask(), truth[index]):.2f} against the reference mask; status: {segment._status.value}")
    if not segment.candidate_mask()[centre]:
        picked = segment.pick_at(image.data_to_world((index, *centre)))
        print(f"clicked the lesion instead: {picked}; Dice {dice(segment.candidate_mask(), truth[index]):.2f}")
    segment.accept()
    viewer.layers[f"{image.name} superpixels"].visible = False
    save(viewer, args.out / "04_accepted.png")

    # The whole scan as the command line labels it: Localize every slice, then Label all slices.
    from napari_inpaint_seg._widget_localize import ALL_SLICES

    localize._slices.value = ALL_SLICES
    localize.run()
    segment.label_all()
    found = segment.labels_layer().data > 0
    print(f"Label all slices: {int(found.any(axis=(1, 2)).sum())} slices labelled, volume Dice {dice(found, truth):.2f} against the reference mask")
    viewer.layers[f"{image.name} heatmap"].visible = False
    viewer.layers[f"{image.name} candidate"].visible = False
    save(viewer, args.out / "05_all_slices.png")

    with tempfile.TemporaryDirectory() as folder:
        segment.ask_path = lambda default: Path(folder) / "labels.nii.gz"
        written = segment.export()
        saved = nib.load(str(written))
        print(f"exported {int((np.asarray(saved.dataobj) > 0).sum())} voxels; affine kept: {np.allclose(saved.affine, image.metadata['affine'])}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
