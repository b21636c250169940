"""``napari-inpaint-seg [SCAN] [--modality t1|flair] [--labels LABELS] [--review FOLDER]``: napari with a scan loaded
and both widgets docked.

``--labels`` opens labels made for the scan (``inpaint-seg segment``'s, one of a cohort's) to review and correct:
they become the Segment widget's labels layer, and Export labels offers to write them back to their file.
``--review`` opens a cohort folder (``inpaint-seg segment --out-dir``'s) in the Review cohort widget instead, at its
first case without a verdict.

Without a scan, the MNI152 T1 template bundled with nilearn is opened (healthy, skull-stripped).
Problems with the arguments (a missing file, a checkpoint that cannot be used, a scan without its modality) are
reported before napari starts. A scan needs ``--modality`` (or a ``--model``, which knows its own, or a file name
that states it: :func:`~.display.modality_from_name`): the shipped models are one per modality, and a FLAIR model
on a T1 scan gives a confident, wrong heatmap.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import PLUGIN
from .errors import InputError
from .models.config import MODALITIES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-inpaint-seg", description="Open napari with the inpainting segmentation widgets.")
    parser.add_argument("scan", type=Path, nargs="?", help="NIfTI scan (.nii, .nii.gz) or 2D image; default: the MNI152 T1 template")
    parser.add_argument("--modality", choices=MODALITIES, help="the scan's sequence; selects the shipped model (default t1 for the template)")
    parser.add_argument("--model", type=Path, help="a .safetensors checkpoint instead of a shipped model")
    parser.add_argument("--skull-stripped", action="store_true", help="the scan is already skull-stripped (background 0): skip brain extraction")
    parser.add_argument("--labels", type=Path, help="labels made for the scan (e.g. by inpaint-seg segment) to review and correct; "
                                                    "Export labels writes them back to this file, after asking")
    parser.add_argument("--review", type=Path, metavar="FOLDER",
                        help="review a cohort: the --out-dir folder of inpaint-seg segment, case after case (accept, correct or reject each)")
    return parser


def read_review_labels(args: argparse.Namespace, layer_data: tuple | None) -> tuple | None:
    """The labels layer data tuple of ``--labels`` (None without it), checked before napari starts against the scan
    whose layer data :func:`read_arguments` made."""
    if args.labels is None:
        return None
    if layer_data is None:
        raise InputError("--labels needs the scan they were made for")
    return labels_layer_data_for(args.labels, layer_data, args.scan)


def labels_layer_data_for(path: Path, layer_data: tuple, scan_path: Path) -> tuple:
    """The labels layer data tuple of the labels file ``path``, refused unless it lies on the grid of the scan whose
    layer data is ``layer_data`` (read from ``scan_path``): labels on another grid would be drawn, corrected and saved
    in the wrong place."""
    from .display import in_file_order, labels_layer_data, scan_from_layer
    from .io import geometry_difference, read_scan

    data, kwargs, _ = layer_data
    scan = in_file_order(scan_from_layer(data, kwargs["metadata"], kwargs["scale"]), kwargs["metadata"])  # as stored, not read again
    labels = read_scan(path)
    problem = geometry_difference(labels, scan)
    if problem:
        raise InputError(f"{path}: {problem} of {scan_path}; these labels were not made for this scan")
    data = labels.data
    if not (np.isfinite(data).all() and data.min() >= 0 and data.max() <= 255 and np.array_equal(data, np.round(data))):
        raise InputError(f"{path}: not labels (whole numbers from 0 to 255)")
    return labels_layer_data(labels)


def scan_layer_data(path: Path, modality: str | None, skull_stripped: bool = False) -> tuple:
    """The image layer data tuple of the scan at ``path``, marked with its modality (given, or stated by the file's
    name; refused when neither says it) and, if so, as skull-stripped."""
    from .display import MODALITY, SKULL_STRIPPED, image_layer_data, scan_modality
    from .io import read_scan

    data, kwargs, layer_type = image_layer_data(read_scan(path))  # a file that cannot be read is the first problem
    kwargs["metadata"][MODALITY] = scan_modality(path, modality)
    if skull_stripped:
        kwargs["metadata"][SKULL_STRIPPED] = True
    return data, kwargs, layer_type


def read_arguments(args: argparse.Namespace) -> tuple | None:
    """Check the arguments and read the scan before napari starts; the scan's layer data tuple (None: the sample)."""
    from .display import MODALITY
    from .models.config import checkpoint_config

    if args.model is not None:
        trained_on = checkpoint_config(args.model).modality
        if args.modality not in (None, trained_on):
            raise InputError(f"{args.model}: the model was trained on {trained_on}, not {args.modality}")
        args.modality = trained_on
    if args.scan is None:
        return None
    layer_data = scan_layer_data(args.scan, args.modality, args.skull_stripped)
    args.modality = layer_data[1]["metadata"][MODALITY]
    return layer_data


def open_viewer(args: argparse.Namespace, layer_data: tuple | None = None, viewer=None, labels_data: tuple | None = None):
    """Show ``layer_data`` (or the MNI152 sample) in ``viewer`` (a new one by default) and dock both widgets; with
    ``labels_data``, those labels over it as the Segment widget's labels layer."""
    import napari

    from .display import MODALITY

    viewer = viewer or napari.Viewer(title="napari-inpaint-seg")
    if layer_data is None:
        image, labels = viewer.open_sample(PLUGIN, "mni152")[0], None
        image.metadata[MODALITY] = args.modality or "t1"
    else:
        image, labels = add_scan_layers(viewer, layer_data, labels_data)
    localize, segment = show_in_widgets(viewer, image, labels, args.model)
    return viewer, localize, segment


def add_scan_layers(viewer, layer_data: tuple, labels_data: tuple | None = None) -> tuple:
    """The scan's image layer and, with ``labels_data``, its labels layer over it (half opaque), added to ``viewer``."""
    data, kwargs, _ = layer_data
    image = viewer.add_image(data, **kwargs)
    if labels_data is None:
        return image, None
    data, kwargs, _ = labels_data
    return image, viewer.add_labels(data, **kwargs, opacity=0.5)


def show_in_widgets(viewer, image, labels=None, model: Path | None = None) -> tuple:
    """Dock the Localize and Segment widgets (reused when docked) on ``image``, with the model of its modality (or
    ``model``) and ``labels`` as the Segment widget's labels layer; the slider on the middle of the labels (of the
    scan without them). Returns the two widgets."""
    from ._menu import open_widgets
    from .display import MODALITY

    localize, segment = open_widgets(viewer)
    for widget in (localize, segment):
        widget.reset_choices()
        widget.select_image(image)
    localize.select_model(modality=image.metadata.get(MODALITY), checkpoint=model)
    if labels is not None:
        segment.select_labels(labels)
    if image.ndim == 3:
        labelled = np.flatnonzero(np.asarray(labels.data).any(axis=(1, 2))) if labels is not None else []
        viewer.dims.axis_labels = ("axial slice", "row", "column")
        viewer.dims.set_current_step(0, int(labelled[len(labelled) // 2]) if len(labelled) else image.data.shape[0] // 2)
    return localize, segment


def open_review(folder: Path, viewer=None):
    """napari with the Review cohort widget docked on ``folder``, its first case without a verdict shown."""
    import napari

    viewer = viewer or napari.Viewer(title="napari-inpaint-seg: review")
    _, review = viewer.window.add_plugin_dock_widget(PLUGIN, "Review cohort")
    review.open_cohort(folder)
    return viewer, review


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.review is not None:
            if args.scan is not None or args.labels is not None:
                raise InputError("--review opens each case's scan and labels itself; give the folder alone")
            from .review import read_cases

            read_cases(args.review)  # a folder without a cohort is refused before napari starts
        layer_data = read_arguments(args)
        labels_data = read_review_labels(args, layer_data)
    except InputError as exc:
        print(f"napari-inpaint-seg: error: {exc}", file=sys.stderr)
        return 2
    import napari

    if args.review is not None:
        open_review(args.review)
    else:
        open_viewer(args, layer_data, labels_data=labels_data)
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
