"""Localize widget: the inpainting heatmap of the current slice (or all slices), drawn live as it is computed.

The work runs in napari's ``thread_worker``; the viewer stays responsive, the progress bar moves, and *Cancel*
stops after the current batch of windows. Cancelling (or an error) puts the heatmap layer back as it was before
the run: its previous values are restored, or the layer is removed if this run created it.

*Resample in-plane* adds the scan on a finer in-plane grid as a new layer and chooses it (:mod:`._widget_resample`),
for brains smaller in pixels than the shipped models' training brains.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton, RadioButtons, SpinBox

from ._widget_common import (
    HEATMAP_ROLE,
    LOCALISER_RUNS,
    MODEL_DECISION,
    MODEL_MODALITY,
    PREPARED,
    Failed,
    current_slice,
    heatmap_for,
    is_skull_stripped,
    make_job,
    overlay_geometry,
    overlay_metadata,
    run_synchronously,
    scan_layers,
    show_problem,
    wait_for,
    warn_unless_axial_view,
)
from ._widget_resample import AUTO, add_resampled_layer, resample_job, zoom_choice
from .brain_size import small_brain_note
from .device import DEVICES, pick_device
from .display import MODALITY, RESAMPLED_FROM
from .errors import InputError
from .in_plane import ZOOM_RANGE
from .localizer import HeatmapUpdate
from .pipeline import POLARITY_CHOICES, check_geometry, enough_brain, localize_slice, resolve_polarity
from .provenance import localiser_runs_after

CURRENT_SLICE = "current slice"
ALL_SLICES = "all slices"
CHECKPOINT_FILE = "checkpoint file…"
NO_SCAN = "open a scan first (File > Open, or File > Open Sample > napari-inpaint-seg)"
Checked = TypeVar("Checked")
PREPARE_AHEAD_MS = 500  # after the scan (or the skull-stripped box) is chosen: choices made in passing are not prepared


@dataclass
class SliceUpdate:
    """A heatmap update for slice ``index``, the ``position``-th of ``count`` slices in this run."""

    index: int
    position: int
    count: int
    update: HeatmapUpdate


def model_choices() -> list[tuple[str, tuple[Path, ...] | str]]:
    """Shipped models as (label, paths): per modality the default window first, then the others, then all its
    windows fused; last the entry that enables the checkpoint file field (its value is the label)."""
    from .models.checkpoint import shipped_model_path, shipped_models
    from .models.config import DEFAULT_GAMMA

    choices: list[tuple[str, tuple[Path, ...] | str]] = []
    for modality in dict.fromkeys(modality for modality, _ in shipped_models()):
        gammas = sorted((gamma for m, gamma in shipped_models() if m == modality), key=lambda gamma: gamma != DEFAULT_GAMMA)
        choices += [(f"{modality}, gamma={gamma} (shipped)", (shipped_model_path(modality, gamma),)) for gamma in gammas]
        if len(gammas) > 1:
            label = f"{modality}, gamma={'+'.join(map(str, sorted(gammas)))} fused (shipped)"
            choices.append((label, tuple(shipped_model_path(modality, gamma) for gamma in sorted(gammas))))
    return [*choices, (CHECKPOINT_FILE, CHECKPOINT_FILE)]


# Generators loaded by earlier runs, by (file, its modification time and size, device): reading, checking and
# folding a model took 0.1-0.4 s of every Run on a 2-core CPU, before the first heatmap could appear.
_LOADED: dict[tuple, tuple] = {}
_LOADED_MAX = 4


def loaded_generator(path: Path, device: str) -> tuple:
    """The generator and configuration in checkpoint ``path`` on ``device``, loaded once while the file is
    unchanged (a retrained checkpoint saved under the same name is read again)."""
    from .models.checkpoint import load_generator

    try:
        stat = Path(path).stat()
    except OSError:
        return load_generator(path, device)  # its message says what is wrong with the path
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    if key not in _LOADED:
        model = load_generator(path, device)
        while len(_LOADED) >= _LOADED_MAX:
            del _LOADED[next(iter(_LOADED))]
        _LOADED[key] = model
    return _LOADED[key]


def localize_job(preparation: Future, device, model_paths, indices, step, fast, refine_fraction, polarity):
    """Worker body: load the model, wait for the scan's preparation (:meth:`PreparedCache.preparation`, often done
    already), then yield heatmap updates slice by slice.

    Returns a :class:`Failed` for problems the user can fix instead of raising, so they become one clear message.
    """
    try:
        models = [loaded_generator(path, device) for path in model_paths]
        largest = max(config.gamma for _, config in models)
        yield from wait_for(preparation)
        prepared = preparation.result()
        check_geometry(prepared, [config for _, config in models])
        single = len(indices) == 1
        for position, index in enumerate(indices):
            brain = prepared.brain[:, :, index]
            # Over all slices, like segment_volume, a slice with less brain than one window is left empty; the one
            # slice a user asked for is localised whenever it has brain at all (they chose it and can see the result).
            if not brain.any() or (not single and not enough_brain(brain, largest)):
                if single:
                    return Failed(f"slice {index} contains no brain; move to a slice through the brain")
                yield SliceUpdate(index, position, len(indices), HeatmapUpdate(np.zeros(brain.shape, np.float32), 0, 0))
                continue
            for update in localize_slice(prepared, index, models, step=step, fast=fast, device=device, polarity=polarity, refine_fraction=refine_fraction):
                yield SliceUpdate(index, position, len(indices), update)
    except InputError as exc:
        return Failed(str(exc))
    return None


def heatmap_contrast(heatmap: np.ndarray) -> tuple[float, float]:
    """Contrast limits that light up the unusual half of the brain: from the median to the top of the errors."""
    values = heatmap[heatmap > 0]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [50, 99.9])
    return float(low), float(max(high, low + 1e-3))


class LocalizeWidget(Container):
    """Image, model, step k, error sign, device, slice range and localiser; Run / Cancel."""

    def __init__(self, napari_viewer, *, cache=PREPARED):
        super().__init__()
        self._viewer = napari_viewer
        self._cache = cache
        self._job = None
        self._closed = False
        self._shown_image = None
        self._run_state: dict | None = None
        self._progress = None

        self._image = ComboBox(label="image", choices=self._image_choices)
        self._model = ComboBox(label="model", choices=model_choices())
        self._checkpoint = FileEdit(label="checkpoint", mode="r", filter="*.safetensors")
        self._step = SpinBox(label="step k (0 = auto)", value=0, min=0, max=64,
                             tooltip="window stride in pixels (the paper's k); 0 = auto: 4, or gamma/8 for windows above 32 px")
        self._polarity = ComboBox(label="error sign", choices=POLARITY_CHOICES, value="auto",
                                  tooltip="which inpainting error counts: auto = the sign that marks LGG on the model's modality (bright on FLAIR, "
                                          "dark on T1-pre); both = the absolute error, as the paper; bright or dark also tells Segment the lesion's side "
                                          "(bright for an LGG that is not dark on T1-pre)")
        self._device = ComboBox(label="device", choices=DEVICES, value="auto")
        self._slices = RadioButtons(label="slices", choices=(CURRENT_SLICE, ALL_SLICES), value=CURRENT_SLICE, orientation="horizontal")
        self._fast = CheckBox(text="fast localiser (off: the paper's reference, slower)", value=True)
        self._refine = FloatSpinBox(label="refined share (0 = auto)", value=0.0, min=0.0, max=1.0, step=0.1,
                                    tooltip="fast localiser: share of the windows refined at step k after a first pass over an eighth or a "
                                            "quarter of them; more is slower and closer to the reference. 0 = auto: 0.15 for windows up to 32 px "
                                            "(the reference's answers on the benchmark slices), 0.3 above; 1 gives the reference's heatmap")
        self._skull_stripped = CheckBox(text="scan is already skull-stripped (background 0)", value=False,
                                        tooltip="use each slice's non-zero area as the brain instead of running brain extraction")
        self._zoom = FloatSpinBox(label="in-plane zoom (0 = auto)", value=AUTO, min=0.0, max=ZOOM_RANGE[1], step=0.1,
                                  tooltip="Resample in-plane: the factor to resample the scan's slices by; 0 = auto: a brain smaller in pixels "
                                          "than the shipped models' training brains is brought to their median size")
        self._resample = PushButton(text="Resample in-plane", tooltip="add the scan resampled in-plane as a new layer over it and work on that; "
                                    "labels made on it are exported on the original scan's grid")
        self._run = PushButton(text="Run")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        self.extend([self._image, self._model, self._checkpoint, self._step, self._polarity, self._device, self._slices, self._fast,
                     self._refine, self._skull_stripped, Container(widgets=[self._zoom, self._resample], layout="horizontal", labels=True),
                     Container(widgets=[self._run, self._cancel], layout="horizontal", labels=False), self._status])

        from qtpy.QtCore import QTimer

        self._ahead = QTimer(self.native)  # dies with the widget
        self._ahead.setSingleShot(True)
        self._ahead.setInterval(PREPARE_AHEAD_MS)
        self._ahead.timeout.connect(self._prepare_ahead)

        self._model.changed.connect(self._on_model_changed)
        self._image.changed.connect(self._on_image_changed)
        self._image.changed.connect(self._schedule_preparation)
        self._skull_stripped.changed.connect(self._schedule_preparation)
        self._run.clicked.connect(self.run)
        self._resample.clicked.connect(self.resample)
        self._fast.changed.connect(lambda fast: setattr(self._refine, "enabled", fast))
        self._cancel.clicked.connect(self.cancel)
        self.native.destroyed.connect(self._on_closed)
        self._on_model_changed()
        self._on_image_changed()
        self._schedule_preparation()

    # ------------------------------------------------------------ choices and defaults

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in scan_layers(self._viewer)]

    def _on_model_changed(self, *_):
        self._checkpoint.visible = self._model.value == CHECKPOINT_FILE

    def _on_image_changed(self, *_):
        image = self._image.value
        shown = (image, image.metadata.get(MODALITY), is_skull_stripped(image)) if image is not None else None
        if image is None or shown == self._shown_image:  # the same layer as it was (renamed, choices refreshed): keep the settings
            return
        self._shown_image = shown
        self._skull_stripped.value = is_skull_stripped(image)
        modality = image.metadata.get(MODALITY)
        if modality:
            self.select_model(modality=modality)

    def _schedule_preparation(self, *_) -> None:
        """Prepare the chosen scan :data:`PREPARE_AHEAD_MS` after the choice settles (not in synchronous mode,
        where it would hold up the viewer)."""
        if not self._closed and not run_synchronously():
            self._ahead.start()

    def _prepare_ahead(self) -> None:
        """Brain extraction takes seconds (6-7 s on a 2-core CPU): start it in the background before the first Run
        asks for it, so that Run shows a heatmap at once; a Run clicked meanwhile waits for it."""
        image = self._image.value
        if self._closed or image is None:
            return
        if self._cache.busy():  # one preparation at a time ahead of Runs: each peaks at about 1.2 GB
            self._ahead.start()  # and look again later
            return
        try:
            device = pick_device(self._device.value)
        except InputError:
            return  # Run says why
        self._cache.preparation(image, self._skull_stripped.value, device)

    def select_image(self, layer) -> None:
        """Work on ``layer`` (it must be in the viewer)."""
        self._image.reset_choices()
        self._image.value = layer

    def select_model(self, *, modality: str | None = None, checkpoint: str | Path | None = None) -> None:
        """Preselect the shipped model for ``modality``, or a checkpoint file (used by the launcher)."""
        if checkpoint:
            self._model.value = CHECKPOINT_FILE
            self._checkpoint.value = Path(checkpoint)
            return
        for label, paths in model_choices():
            if paths != CHECKPOINT_FILE and label.startswith(f"{modality},"):
                self._model.value = paths  # the first entry of a modality: its default window
                return

    def model_paths(self) -> tuple[Path, ...]:
        if self._model.value != CHECKPOINT_FILE:
            return tuple(self._model.value)
        path = self._checkpoint.value
        if path is None or str(path) in ("", ".") or Path(path).is_dir():
            raise InputError("choose a shipped model or a .safetensors checkpoint file")
        return (Path(path),)

    @property
    def running(self) -> bool:
        return self._job is not None

    # ------------------------------------------------------------ run / cancel

    def _checked(self, check: Callable[[Any], Checked]) -> tuple[Any, Checked, str] | None:
        """The chosen scan, what ``check(scan)`` makes of the settings, and the device; None once the problem (no
        scan, or an :class:`InputError` of ``check`` or of the device) is shown, so Run and Resample start nothing."""
        image = self._image.value
        try:
            if image is None:
                raise InputError(NO_SCAN)
            return image, check(image), pick_device(self._device.value)
        except InputError as exc:
            show_problem(str(exc))
            return None

    def run(self) -> None:
        """Start localisation with the current settings (no-op while a run is going on)."""
        if self.running:
            return
        from .models.config import checkpoint_config, decision_caveat, shipped_model_caveat, stored_decision, uses_shipped_model
        from .provenance import localiser_record, model_record

        def models(image) -> tuple[tuple[Path, ...], list]:
            paths = self.model_paths()
            return paths, [checkpoint_config(path) for path in paths]  # the files' headers only: a bad file is refused at once

        checked = self._checked(models)
        if checked is None:
            return
        image, (model_paths, configs), device = checked
        modality, config = image.metadata.get(MODALITY), configs[0]
        if modality and modality != config.modality:
            from napari.utils.notifications import show_warning

            show_warning(f"napari-inpaint-seg: '{image.name}' is marked {modality}, but the model was trained on {config.modality} scans")
        n_slices = 1 if image.ndim == 2 else image.data.shape[0]
        if self._slices.value == CURRENT_SLICE:
            warn_unless_axial_view(self._viewer, image)
        indices = [current_slice(self._viewer, image)] if self._slices.value == CURRENT_SLICE else list(range(n_slices))
        skull_stripped = self._skull_stripped.value
        polarity = resolve_polarity(self._polarity.value, config.modality)
        step, refine_fraction = self._step.value or None, self._refine.value or None
        existing = heatmap_for(self._viewer, image)
        if existing is not None and existing.data.shape != image.data.shape:
            existing = None
        self._run_state = {
            "image": image,
            "layer": existing,
            "created": False,
            # Restoring on cancel needs the slices this run may touch, as they were.
            "backup": {i: np.array(existing.data[i] if image.ndim == 3 else existing.data) for i in indices} if existing is not None else {},
            "indices": indices,
            "caveat": shipped_model_caveat(model_paths, config.modality),
            "decision_caveat": decision_caveat(list(model_paths), configs),
            "shipped": uses_shipped_model(model_paths),
            "modality": config.modality,
            "decision": stored_decision(configs),
            "record": {  # what made this run's heat, for the sidecar of labels exported later
                "Models": [model_record(path, config, uses_shipped_model([path])) for path, config in zip(model_paths, configs)],
                "Localiser": localiser_record(fast=self._fast.value, device=device, polarity=polarity, gammas=[config.gamma for config in configs],
                                              step=step, refine_fraction=refine_fraction),
                "BrainExtraction": "none (taken as skull-stripped)" if skull_stripped else "deepbet",
            },
        }
        from napari.utils import progress

        self._progress = progress(total=100 * len(indices), desc="inpainting heatmap")
        self._progress_done = 0
        self._set_running(True)
        preparation = self._run_state["preparation"] = self._cache.preparation(image, skull_stripped, device)
        self._status.value = "running…" if preparation.done() else "preparing the scan (brain extraction, once per scan)…"
        self._job = make_job(
            localize_job, preparation, device, model_paths, indices, step, self._fast.value, refine_fraction, polarity,
            yielded=self._on_yielded, returned=self._on_returned, errored=self._on_errored, aborted=self._on_aborted, finished=self._on_finished,
        )
        self._job.start()

    def resample(self) -> None:
        """Add the chosen scan resampled in-plane by the zoom box's factor as a new layer, and choose it (in a
        worker: it waits for the scan's preparation; no-op while a run is going on)."""
        if self.running:
            return

        def zoom(image):
            if RESAMPLED_FROM in image.metadata:
                raise InputError(f"'{image.name}' is resampled already; to resample by another factor, choose the scan it came from")
            return zoom_choice(self._zoom.value)

        checked = self._checked(zoom)
        if checked is None:
            return
        image, choice, device = checked
        skull_stripped = self._skull_stripped.value
        preparation = self._cache.preparation(image, skull_stripped, device)
        self._status.value = "resampling…" if preparation.done() else "preparing the scan (brain extraction, once per scan), then resampling…"
        self._set_running(True)
        self._job = make_job(resample_job, preparation, choice, image.data,
                             returned=lambda value: self._on_resampled(image, skull_stripped, value), errored=self._on_errored,
                             aborted=lambda: setattr(self._status, "value", "resampling cancelled"), finished=self._on_finished)
        self._job.start()

    def _on_resampled(self, image, skull_stripped: bool, value) -> None:
        if self._closed:
            return
        if isinstance(value, Failed):
            show_problem(value.message)
            self._status.value = value.message
            return
        if image not in self._viewer.layers:
            self._status.value = f"not resampled: '{image.name}' was closed meanwhile"
            return
        layer = add_resampled_layer(self._viewer, image, value, skull_stripped, self._cache)
        self.select_image(layer)
        height, width = layer.data.shape[-2:]
        self._status.value = (f"'{image.name}' resampled in-plane by x{value.factor:.2f} ({height}x{width}) into '{layer.name}', chosen here; "
                              f"labels made on it are exported on the grid of '{image.name}'")

    def cancel(self) -> None:
        """Stop the run after the current batch; the heatmap layer goes back to what it was before the run."""
        if self._job is not None:
            self._status.value = "cancelling…"
            self._job.quit()

    def _set_running(self, running: bool) -> None:
        self._run.enabled = not running
        self._cancel.enabled = running

    def _on_yielded(self, value) -> None:
        state = self._run_state
        if state is None or value is None:  # None: still waiting for the scan's preparation
            return
        layer = self._heatmap_layer(state)
        image_2d = state["image"].ndim == 2
        if image_2d:
            layer.data[...] = value.update.heatmap
        else:
            layer.data[value.index] = value.update.heatmap
        layer.contrast_limits = heatmap_contrast(value.update.heatmap)
        layer.refresh()
        total = value.update.windows_total
        fraction = value.update.windows_done / total if total else 1.0
        done = int(100 * value.position + round(100 * fraction))
        if self._progress is not None and done > self._progress_done:
            self._progress.update(done - self._progress_done)
            self._progress_done = done
        where = "" if image_2d else f"slice {value.index} ({value.position + 1}/{value.count}): "
        self._status.value = f"{where}{value.update.windows_done}/{total} windows"

    def _heatmap_layer(self, state: dict):
        """The heatmap layer of this run; created (zeros, the image's geometry) on the first update."""
        if state["layer"] is None or state["layer"] not in self._viewer.layers:
            image = state["image"]
            active = self._viewer.layers.selection.active
            state["layer"] = self._viewer.add_image(
                np.zeros(image.data.shape, np.float32), name=f"{image.name} heatmap", colormap="inferno", opacity=0.5, blending="additive",
                metadata={**overlay_metadata(image, HEATMAP_ROLE), MODEL_MODALITY: state["modality"]}, contrast_limits=(0.0, 1.0), **overlay_geometry(image),
            )
            state["created"] = True
            if active is not None:
                self._viewer.layers.selection.active = active
        return state["layer"]

    def _restore(self) -> None:
        """Put the heatmap layer back as it was before this run."""
        state = self._run_state
        if state is None or state["layer"] is None:
            return
        layer = state["layer"]
        if state["created"]:
            if layer in self._viewer.layers:
                self._viewer.layers.remove(layer)
            return
        for index, values in state["backup"].items():
            if state["image"].ndim == 2:
                layer.data[...] = values
            else:
                layer.data[index] = values
        layer.refresh()

    def _on_closed(self, *_) -> None:
        """The widget (or the whole viewer) was closed: stop the run; what it still reports is then dropped, so
        nothing is drawn into a viewer that is gone."""
        self._closed = True
        self._run_state = None
        if self._job is not None:
            self._job.quit()

    def _on_returned(self, value) -> None:
        if self._closed:
            return
        if isinstance(value, Failed):
            self._restore()
            show_problem(value.message)
            self._status.value = value.message
            return
        state = self._run_state
        layer = state["layer"] if state else None
        if layer is not None:
            if len(state["indices"]) > 1:  # the updates set each slice's contrast, so the last (often empty) slice's was left
                layer.contrast_limits = heatmap_contrast(np.asarray(layer.data))
            layer.metadata[MODEL_MODALITY] = state["modality"]  # Segment's settings when the scan is not marked
            layer.metadata[MODEL_DECISION] = state["decision"]  # Label all slices' no-tumour decision
            layer.metadata[LOCALISER_RUNS] = localiser_runs_after(layer.metadata.get(LOCALISER_RUNS, []), state["record"], state["indices"])
            layer.data = layer.data  # one data event at the end, so the Segment widget re-ranks its candidates
            size_note = small_brain_note(state["preparation"].result().brain) if state["shipped"] else None
            notes = "".join(f"; note: {note}" for note in (state["caveat"], state["decision_caveat"], size_note) if note)
            self._status.value = f"done: heatmap of {len(state['indices'])} slice(s) in '{layer.name}'{notes}"

    def _on_errored(self, exc: Exception) -> None:
        if not self._closed:
            self._restore()
            self._status.value = f"failed: {exc}"

    def _on_aborted(self) -> None:
        if not self._closed:
            self._restore()
            self._status.value = "cancelled; the heatmap layer is as it was"

    def _on_finished(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._job = None
        self._run_state = None
        if not self._closed:
            self._set_running(False)
