"""Seconds from a click on Run to the first partial heatmap drawn, in the Localize widget of a real napari viewer.

    xvfb-run -a python benchmarks/bench_widget.py                            # a test patient's FLAIR, the widget's defaults
    xvfb-run -a python benchmarks/bench_widget.py --gamma 32 --step 4        # the speed issue's window
    xvfb-run -a python benchmarks/bench_widget.py --wait-before-run 15       # the first Run after the background preparation
    xvfb-run -a python benchmarks/bench_widget.py --scan scan.nii.gz --model model.safetensors

The localiser's own "first partial heatmap" (bench_localizer.py) leaves out what the widget adds: reading the
model, the worker thread, the slice's clean pass, the layer update and the canvas redraw. This measures from the
button's click to the first draw of the canvas that shows a heatmap, on the current slice (the scan's middle
tumour slice when a mask is known, else its middle slice). The widget prepares a scan (brain extraction unless
it is skull-stripped) in the background once it is chosen; a Run clicked before that is done waits for it, so the
first run is reported apart ("first_run"), after ``--wait-before-run`` seconds (a user looking at the scan first;
default 0, the click at once). The widget caches the prepared scan, so every later Run on it is like the
"repeated" runs. Without ../shared/data/lgg the scan is the
plugin's sample (the MNI152 template with a synthetic lesion). Needs a display: run it under ``xvfb-run -a``.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "lgg"
FIRST_TEST_PATIENT = "TCGA_DU_6399_19830416"  # the test patient docs/performance.md times end to end


class RunTimer:
    """Times Runs of ``widget`` on slice ``index`` of ``image``: the click, the first heatmap update handled,
    the first canvas draw with a heatmap on that slice, the end of the run.

    The draw is recognised by the heatmap layer's slice being non-zero when the canvas draws (it is zeroed
    before each run), not by order of events: napari's progress bar processes events, so the canvas may draw
    while the widget is still handling the update.
    """

    def __init__(self, widget, viewer, image, index: int) -> None:
        self.widget, self.viewer, self.image, self.index = widget, viewer, image, index
        self.clicked = self.first_update = self.first_draw = None
        handle_update = widget._on_yielded

        def timed_update(value) -> None:
            handle_update(value)
            if self.first_update is None and hasattr(value, "update"):  # a heatmap, not the prepared scan
                self.first_update = time.perf_counter()

        widget._on_yielded = timed_update  # the worker's signal is connected to the bound method at each Run
        viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(self._on_draw)

    def _heatmap_slice(self):
        from napari_inpaint_seg._widget_common import heatmap_for

        layer = heatmap_for(self.viewer, self.image)
        return None if layer is None else layer.data[self.index]

    def _on_draw(self, _event) -> None:
        if self.clicked is not None and self.first_draw is None:
            shown = self._heatmap_slice()
            if shown is not None and shown.any():
                self.first_draw = time.perf_counter()

    def run(self, app, timeout: float) -> dict:
        shown = self._heatmap_slice()
        if shown is not None:
            shown[...] = 0  # the previous run's heatmap must not count as this one's
        self.first_update = self.first_draw = None
        self.clicked = time.perf_counter()
        self.widget._run.native.click()
        while self.widget.running or self.first_draw is None:
            app.processEvents()
            if not self.widget.running and self.first_update is None:  # refused or failed: it says why
                sys.exit(f"the Run ended without a heatmap: {self.widget._status.value}")
            if time.perf_counter() - self.clicked > timeout:
                sys.exit(f"no heatmap drawn within {timeout} s")
            time.sleep(0.001)
        finished, clicked, self.clicked = time.perf_counter(), self.clicked, None
        return {
            "seconds_to_first_update": self.first_update - clicked,
            "seconds_to_first_heatmap_drawn": self.first_draw - clicked,
            "seconds_to_finished": finished - clicked,
        }


def default_scan() -> tuple[str, int | None]:
    """A test patient's FLAIR scan and its middle tumour slice, or None (the sample) without the data folder."""
    scan = DATA / f"{FIRST_TEST_PATIENT}_flair.nii.gz"
    if not scan.exists():
        return "", None
    import nibabel as nib

    tumour = np.asarray(nib.load(DATA / f"{FIRST_TEST_PATIENT}_mask.nii.gz").dataobj) > 0
    slices = np.flatnonzero(tumour.sum(axis=(0, 1)))
    return str(scan), int(slices[len(slices) // 2])


def open_scan(viewer, scan: str):
    """The scan as the user opens it (the plugin's reader), or the plugin's sample with a synthetic lesion."""
    from napari_inpaint_seg import PLUGIN

    if scan:
        (layer,) = viewer.open(scan, plugin=PLUGIN)
    else:
        layer = viewer.open_sample(PLUGIN, "mni152_synthetic_lesion")[0]  # the scan; the second layer is its truth
    return layer


def wait_before_run(app, widget, layer, seconds: float) -> float | None:
    """Let the viewer run for ``seconds``; when the widget's background preparation of ``layer`` ended in that
    time, how many seconds after the start it did (None: not within the wait)."""
    from napari_inpaint_seg._widget_common import PREPARED

    start = time.perf_counter()
    prepared_after = None
    while time.perf_counter() - start < seconds:
        app.processEvents()
        if prepared_after is None and PREPARED.get(layer, widget._skull_stripped.value) is not None:
            prepared_after = time.perf_counter() - start
        time.sleep(0.01)
    return prepared_after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", help="a NIfTI scan (default: a test patient's FLAIR from ../shared/data/lgg, else the plugin's sample)")
    parser.add_argument("--slice", type=int, help="the axial slice to localise (default: the middle tumour slice, else the middle slice)")
    parser.add_argument("--modality", choices=["t1", "flair"], help="the shipped model's modality (default: the scan's, else flair)")
    parser.add_argument("--gamma", type=int, help="the shipped model's window (default: the widget's, the default window)")
    parser.add_argument("--model", type=Path, help="a checkpoint file instead of a shipped model")
    parser.add_argument("--step", type=int, default=0, help="step k (0: the widget's auto)")
    parser.add_argument("--skull-stripped", action="store_true", help="the scan is skull-stripped: no brain extraction")
    parser.add_argument("--wait-before-run", type=float, default=0.0, help="seconds between choosing the scan and the first click on Run")
    parser.add_argument("--repeats", type=int, default=5, help="runs after the first one, on the prepared scan")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with contextlib.redirect_stdout(sys.stderr):  # napari and Qt print notices on stdout; the JSON alone goes there
        result = measure(args)
    print(json.dumps(result, indent=1))


def measure(args: argparse.Namespace) -> dict:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_inpaint_seg._widget_localize import LocalizeWidget, model_choices
    from napari_inpaint_seg.display import MODALITY
    from napari_inpaint_seg.localizer import step_for_window
    from napari_inpaint_seg.models.config import checkpoint_config
    from napari_inpaint_seg.models.window_inference import bfloat16_is_fast

    scan, tumour_slice = (args.scan, None) if args.scan else default_scan()
    viewer = napari.Viewer(show=True)
    layer = open_scan(viewer, scan)
    widget = LocalizeWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Localize")
    widget.select_image(layer)
    if args.model:
        widget.select_model(checkpoint=args.model)
    elif args.modality or args.gamma:
        modality = args.modality or layer.metadata.get(MODALITY) or "flair"
        wanted = [paths for label, paths in model_choices() if label.startswith(f"{modality},") and (args.gamma is None or label.startswith(f"{modality}, gamma={args.gamma} "))]
        if not wanted:
            sys.exit(f"no shipped {modality} model with gamma {args.gamma}")
        widget._model.value = wanted[0]
    if args.skull_stripped:
        widget._skull_stripped.value = True
    widget._step.value = args.step
    index = args.slice if args.slice is not None else tumour_slice if tumour_slice is not None else layer.data.shape[0] // 2
    if not 0 <= index < layer.data.shape[0]:
        sys.exit(f"--slice {index} is outside the scan (its axial slices are 0 to {layer.data.shape[0] - 1})")
    viewer.dims.set_current_step(0, index)
    app = QApplication.instance()
    prepared_after = wait_before_run(app, widget, layer, args.wait_before_run)
    timer = RunTimer(widget, viewer, layer, index)
    first = timer.run(app, args.timeout)
    repeated = [timer.run(app, args.timeout) for _ in range(args.repeats)]
    config = checkpoint_config(widget.model_paths()[0])
    device = widget._device.value
    result = {
        "device": "cuda" if device == "auto" and torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
        "fast_precision": "bfloat16" if bfloat16_is_fast("cuda" if torch.cuda.is_available() else "cpu") else "float32",
        "scan": scan or "sample: MNI152 T1 with a synthetic lesion",
        "slice": index,
        "model": f"{config.modality}, gamma={config.gamma}",
        "step": args.step or step_for_window(config.gamma),
        "brain_extraction": not widget._skull_stripped.value,
        "wait_before_first_run": args.wait_before_run,
        "seconds_to_prepared_in_background": prepared_after,
        "first_run": first,
        "repeated": {name: statistics.median(run[name] for run in repeated) for name in first} if repeated else {},
        "repeats": len(repeated),
    }
    viewer.close()
    return result


if __name__ == "__main__":
    main()
