"""Segment widget: Felzenszwalb superpixels of the current slice ranked by the heatmap; Swap, Accept, Export.

* The superpixel boundaries are drawn over the scan and recomputed 200 ms after ``scale``, ``sigma`` or
  ``min_size`` stop changing, when the slice changes and when a heatmap run finishes.
* The top-ranked segment is the candidate (the paper's answer). **Swap** (Shift-S) moves to the next-ranked
  one, cycling; a click on a segment in the viewer picks that one.
* **Accept** (Shift-K, "keep") writes the candidate with the chosen label value into a labels layer (created if
  needed with the image's scale and metadata) through napari's undoable path and selects that layer, so Ctrl-Z
  undoes it at once.
* **Label all slices** labels every slice that has a heatmap as ``inpaint-seg segment`` does: this widget's
  settings, with the modality's no-tumour decision across slices, the scan's labels redrawn together and their
  small 3D pieces dropped (merge mode); in a worker, written in one step that one Ctrl-Z undoes.
* **Export labels…** writes the labels layer as NIfTI with the source scan's affine and header; an existing
  file is replaced only after confirmation.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox

from ._widget_common import (
    CANDIDATE_ROLE,
    LABELS_OF,
    LOCALISER_RUNS,
    MODEL_DECISION,
    MODEL_MODALITY,
    PREPARED,
    RESAMPLED_OF,
    SUPERPIXELS_ROLE,
    Failed,
    current_slice,
    heatmap_for,
    image_key,
    is_skull_stripped,
    layer_by_role,
    make_job,
    overlay_geometry,
    overlay_metadata,
    role,
    scan_layers,
    show_problem,
    warn_unless_axial_view,
)
from .display import AFFINE, MODALITY, READ_AS_LABELS, ROLE, SOURCE_PATH, voxel_volume_ml
from .errors import InputError
from .pipeline import SliceResult, answer_slices, enough_brain, scan_labels, segment_slice
from .segmentation import (
    ACROSS_SLICES,
    DEFAULT_EDGE_MARGIN,
    DEFAULT_HEAT_SIGMA,
    DEFAULT_MERGE_RATIO,
    DEFAULT_MIN_SIZE,
    DEFAULT_SCALE,
    DEFAULT_SELECTIONS,
    DEFAULT_SIGMA,
    PAPER_SELECTION,
    SELECTION_MODES,
    FelzenszwalbParams,
    Selection,
    default_selection,
    lesion_sign,
    with_decision,
)

SWAP_KEY = "Shift-S"
ACCEPT_KEY = "Shift-K"
DEBOUNCE_MS = 200
NEW_LABELS = "new labels layer"
LABEL_DTYPE = np.uint8


def ask_save_path(parent, default: Path) -> Path | None:
    """Qt file dialog; napari-inpaint-seg asks about overwriting itself, so Qt's own question is switched off."""
    from qtpy.QtWidgets import QFileDialog

    name, _ = QFileDialog.getSaveFileName(parent, "Export labels as NIfTI", str(default), "NIfTI (*.nii.gz *.nii)",
                                          options=QFileDialog.Option.DontConfirmOverwrite)
    return Path(name) if name else None


def confirm_overwrite(parent, path: Path) -> bool:
    from qtpy.QtWidgets import QMessageBox

    answer = QMessageBox.question(parent, "Replace file?", f"{path} exists. Replace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def default_export_path(labels_layer) -> Path:
    """Labels read from a labels file go back to it (Export asks before replacing it); labels made on a scan go
    beside it, as SCAN_labels.nii.gz."""
    source = labels_layer.metadata.get(SOURCE_PATH)
    if source and labels_layer.metadata.get(READ_AS_LABELS):
        return Path(source)
    if source:
        source = Path(source)
        stem = source.name[: -len(".nii.gz")] if source.name.lower().endswith(".nii.gz") else source.stem
        return source.with_name(f"{stem}_labels.nii.gz")
    return Path.home() / f"{labels_layer.name}.nii.gz"


def label_all_job(prepared, heatmaps: dict[int, np.ndarray], params: FelzenszwalbParams, selection: Selection, small: Collection[int] = ()):
    """Yields how many slices are done; returns the labels ``inpaint-seg segment`` would write, by slice index
    (``small``: slices Localize went over but left without heat, too little brain, which the labels may grow into)."""
    answers = {}
    for done, (index, answer) in enumerate(answer_slices(prepared, heatmaps, params, selection), start=1):
        answers[index] = answer
        yield done
    return scan_labels(prepared, answers, selection, small)


def unlocalised_slices(heatmap_layer, heatmaps: dict[int, np.ndarray], brain: np.ndarray) -> list[int]:
    """The slices Localize went over but left without heat for having less brain than its largest window (``brain``:
    the prepared scan's, slice axis last), as ``inpaint-seg segment`` leaves them: the labels may grow into them."""
    small = set()
    for run in heatmap_layer.metadata.get(LOCALISER_RUNS, []):
        gamma = max(window["Gamma"] for window in run["Localiser"]["Windows"])
        small.update(index for index in run["Slices"] if index not in heatmaps and not enough_brain(brain[:, :, index], gamma))
    return sorted(small)


class SegmentWidget(Container):
    """Superpixel parameters, candidate navigation, accepting into a labels layer and exporting it."""

    def __init__(self, napari_viewer, *, cache=PREPARED, ask_path: Callable | None = None, confirm: Callable | None = None):
        super().__init__()
        self._viewer = napari_viewer
        self._cache = cache
        # Injectable dialogs (tests answer them): ask_path(default) -> Path | None, confirm(path) -> bool.
        self.ask_path = ask_path or (lambda default: ask_save_path(self.native, default))
        self.confirm_overwrite = confirm or (lambda path: confirm_overwrite(self.native, path))
        self._result: SliceResult | None = None
        self._rank = 0
        self._drawn: dict[str, int | None] = {}
        self._preparing = False  # a preparation asked for by this widget is under way
        self._labelling = None
        self._watched_heatmap = None
        self._shown_image = None
        self._settings_modality: str | None = None  # the modality whose tuned settings the controls were given
        self._closed = False
        self._refreshing = False

        self._image = ComboBox(label="image", choices=self._image_choices)
        self._scale = FloatSpinBox(label="scale", value=DEFAULT_SCALE, min=1.0, max=100000.0, step=5.0,
                                   tooltip="Felzenszwalb scale: larger gives larger segments")
        self._sigma = FloatSpinBox(label="sigma", value=DEFAULT_SIGMA, min=0.0, max=10.0, step=0.1, tooltip="Gaussian smoothing before segmenting")
        self._min_size = SpinBox(label="min_size", value=DEFAULT_MIN_SIZE, min=1, max=100000, tooltip="smallest segment in pixels")
        self._mode = ComboBox(label="mode", choices=list(SELECTION_MODES), value="merge",
                              tooltip="merge: the top segment grown over hot neighbours (default); paper: the top segment alone")
        self._merge_ratio = FloatSpinBox(label="merge ratio", value=DEFAULT_MERGE_RATIO, min=0.0, max=1.0, step=0.05,
                                         tooltip="merge mode: a neighbour joins if its excess heat is at least this share of the top segment's")
        self._heat_sigma = FloatSpinBox(label="heat smoothing", value=DEFAULT_HEAT_SIGMA, min=0.0, max=64.0, step=2.0,
                                        tooltip="merge mode: Gaussian sigma (pixels) applied to the heatmap inside the brain before scoring")
        self._edge_margin = SpinBox(label="rim margin", value=DEFAULT_EDGE_MARGIN, min=0, max=100,
                                    tooltip="merge mode: pixels of the brain's rim left out of segment scores (the edge is always hard to inpaint)")
        self._dark_share = FloatSpinBox(label="darkest share ignored", value=0.0, min=0.0, max=0.9, step=0.025,
                                        tooltip="merge mode: take the heat off this share of the brain, its darkest pixels (on T1-pre the fluid of "
                                                "the ventricles and sulci, which the generator fills with tissue; 0: off)")
        self._dark_margin = SpinBox(label="and pixels around it", value=0, min=0, max=20,
                                    tooltip="merge mode: with a darkest share, also take the heat off the brain within this many pixels of "
                                            "those darkest pixels (the fluid's partial-volume rim)")
        self._refine_radius = SpinBox(label="refine radius", value=0, min=0, max=100,
                                      tooltip="merge mode: redraw the answer along the lesion's intensity edge within this many pixels (0: off); "
                                              "the lesion is dark on a T1 image, bright otherwise, or as Localize's error sign when that is bright or dark")
        self._labels = ComboBox(label="labels layer", choices=self._labels_choices)
        self._label_value = SpinBox(label="label value", value=1, min=1, max=255)
        self._click = CheckBox(text="click a segment to pick it", value=True)
        self._swap = PushButton(text=f"Swap ({SWAP_KEY})")
        self._accept = PushButton(text=f"Accept ({ACCEPT_KEY})")
        self._label_all = PushButton(text="Label all slices", tooltip="label every slice that has a heatmap as the command line does: the no-tumour "
                                     "decision across slices, the scan redrawn together and its small 3D pieces dropped (merge mode); one Ctrl-Z undoes it")
        self._export = PushButton(text="Export labels…")
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        self.extend([self._image, self._scale, self._sigma, self._min_size, self._mode, self._merge_ratio, self._heat_sigma, self._edge_margin, self._dark_share, self._dark_margin,
                     self._refine_radius, self._labels,
                     self._label_value, self._click,
                     Container(widgets=[self._swap, self._accept], layout="horizontal", labels=False), self._label_all, self._export, self._status])

        from qtpy.QtCore import QTimer

        self._timer = QTimer(self.native)  # dies with the widget
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)

        for widget in (self._scale, self._sigma, self._min_size, self._mode, self._merge_ratio, self._heat_sigma, self._edge_margin, self._dark_share, self._dark_margin,
                       self._refine_radius):
            widget.changed.connect(self.schedule_refresh)
        self._image.changed.connect(self._on_image_changed)
        self._swap.clicked.connect(self.swap)
        self._accept.clicked.connect(self.accept)
        self._label_all.clicked.connect(self.label_all)
        self._export.clicked.connect(lambda: self.export())
        self._viewer.dims.events.point.connect(self._on_slice_changed)
        self._viewer.layers.events.inserted.connect(self._on_layers_changed)
        self._viewer.layers.events.inserted.connect(self._follow_resampling)
        self._viewer.layers.events.removed.connect(self._on_layers_changed)
        self._pick = self._mouse_callback()
        self._viewer.mouse_drag_callbacks.append(self._pick)
        self._bind_keys()
        self.native.destroyed.connect(self._disconnect_viewer)
        self._on_image_changed()

    # ------------------------------------------------------------ wiring

    def _bind_keys(self) -> None:
        this = weakref.ref(self)

        def swap(_viewer):
            if this() is not None:
                this().swap()

        def accept(_viewer):
            if this() is not None:
                this().accept()

        self._viewer.bind_key(SWAP_KEY, swap, overwrite=True)
        self._viewer.bind_key(ACCEPT_KEY, accept, overwrite=True)

    def _disconnect_viewer(self, *_) -> None:
        """The widget was closed: stop listening to the viewer and give back the mouse and keys."""
        viewer = self._viewer
        viewer.dims.events.point.disconnect(self._on_slice_changed)
        viewer.layers.events.inserted.disconnect(self._on_layers_changed)
        viewer.layers.events.inserted.disconnect(self._follow_resampling)
        viewer.layers.events.removed.disconnect(self._on_layers_changed)
        if self._watched_heatmap is not None:
            self._watched_heatmap.events.data.disconnect(self.schedule_refresh)
            self._watched_heatmap = None
        if self._pick in viewer.mouse_drag_callbacks:
            viewer.mouse_drag_callbacks.remove(self._pick)
        for key in (SWAP_KEY, ACCEPT_KEY):
            viewer.bind_key(key, None, overwrite=True)
        self._closed = True

    def _mouse_callback(self):
        this = weakref.ref(self)

        def pick_segment(viewer, event):
            """A click (press and release without moving) on a segment makes it the candidate."""
            widget = this()
            if widget is None or not widget._click.value or widget._result is None or _painting(viewer):
                return
            yield
            if event.type == "mouse_release":  # a drag (mouse_move first) pans the view and picks nothing
                widget.pick_at(event.position)

        return pick_segment

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in scan_layers(self._viewer)]

    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        layers = [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Labels) and role(layer) is None]
        return [*layers, (NEW_LABELS, NEW_LABELS)]

    def select_image(self, layer) -> None:
        """Work on ``layer`` (it must be in the viewer)."""
        self._image.reset_choices()
        self._image.value = layer

    def _on_image_changed(self, *_):
        image = self._image.value
        shown = (image, self._modality())
        if shown == self._shown_image:  # the same layer as it was (renamed, choices refreshed): keep the user's settings
            return
        self._shown_image = shown
        self._settings_modality = shown[1]
        self._use_modality_defaults()
        self._follow_labels(image)
        self._result = None
        self._watch_heatmap()
        self.schedule_refresh()

    def _follow_labels(self, image) -> None:
        """The labels layer follows the image: the one made for it, else a new one, unless the user chose a labels
        layer of their own (not made by this widget for another image)."""
        from napari.layers import Labels

        self._labels.reset_choices()
        chosen = self._labels.value
        if image is None or (chosen not in (None, NEW_LABELS) and LABELS_OF not in chosen.metadata):
            return
        own = [layer for layer in self._viewer.layers if isinstance(layer, Labels) and layer.metadata.get(LABELS_OF) == image_key(image)]
        self._labels.value = own[0] if own else NEW_LABELS

    def _use_modality_defaults(self) -> None:
        """Merge settings tuned for the image's modality (when it is marked), as the command line uses them."""
        modality = self._modality()
        if modality in DEFAULT_SELECTIONS:
            tuned = DEFAULT_SELECTIONS[modality]
            self._merge_ratio.value, self._heat_sigma.value, self._edge_margin.value = tuned.merge_ratio, tuned.heat_sigma, tuned.edge_margin
            self._refine_radius.value, self._dark_share.value, self._dark_margin.value = tuned.refine_radius, tuned.dark_share, tuned.dark_margin

    def _modality(self) -> str | None:
        """The image's modality; for a scan not marked with one (opened with File > Open), that of the model whose
        heatmap it has, so that its settings are the ones ``inpaint-seg segment --modality`` uses."""
        image = self._image.value
        if image is None:
            return None
        heatmap = heatmap_for(self._viewer, image)
        return image.metadata.get(MODALITY) or (heatmap.metadata.get(MODEL_MODALITY) if heatmap is not None else None)

    def _lesion(self) -> str:
        """The lesion's side: the error sign the heat was made with (Localize's "error sign") when every slice's
        run used the same bright or dark one, else the modality's (:func:`~.segmentation.lesion_sign`)."""
        image = self._image.value
        heatmap = heatmap_for(self._viewer, image) if image is not None else None
        signs = {run.get("Localiser", {}).get("ErrorSign") for run in (heatmap.metadata.get(LOCALISER_RUNS, []) if heatmap is not None else [])}
        return lesion_sign(signs.pop() if len(signs) == 1 else "auto", self._modality())

    def _follow_modality(self) -> None:
        """The settings tuned for the modality, when it becomes known or changes (a heatmap of another model)."""
        modality = self._modality()
        if modality != self._settings_modality:
            self._settings_modality = modality
            self._use_modality_defaults()

    def _on_slice_changed(self, *_):
        if self._image.value is not None:
            self.schedule_refresh()

    def _on_layers_changed(self, *_):
        self._watch_heatmap()

    def _follow_resampling(self, event) -> None:
        """The chosen scan was resampled in-plane (Localize's *Resample in-plane*): work on the resampled layer, as
        the Localize widget now does."""
        image = self._image.value
        if image is not None and event.value.metadata.get(RESAMPLED_OF) == image_key(image):
            self.select_image(event.value)

    def _watch_heatmap(self) -> None:
        """Re-rank when the image's heatmap layer is replaced or finishes a run (its data event)."""
        heatmap = heatmap_for(self._viewer, self._image.value)
        if heatmap is self._watched_heatmap:
            return
        if self._watched_heatmap is not None:
            self._watched_heatmap.events.data.disconnect(self.schedule_refresh)
        self._watched_heatmap = heatmap
        if heatmap is not None:
            heatmap.events.data.connect(self.schedule_refresh)
            self.schedule_refresh()

    def schedule_refresh(self, *_) -> None:
        """Recompute :data:`DEBOUNCE_MS` after the last change (typing a value does not recompute per keystroke)."""
        if not self._closed:
            self._timer.start()

    # ------------------------------------------------------------ compute and draw

    @property
    def params(self) -> FelzenszwalbParams:
        return FelzenszwalbParams(float(self._scale.value), float(self._sigma.value), int(self._min_size.value))

    @property
    def selection(self) -> Selection:
        if self._mode.value == "paper":
            return PAPER_SELECTION
        return Selection(mode="merge", merge_ratio=float(self._merge_ratio.value), heat_sigma=float(self._heat_sigma.value), edge_margin=int(self._edge_margin.value),
                         refine_radius=int(self._refine_radius.value), lesion=self._lesion(), dark_share=float(self._dark_share.value),
                         dark_margin=int(self._dark_margin.value))

    @property
    def volume_selection(self) -> Selection:
        """:attr:`selection` with the modality's decision across slices and volume step, as the command line uses them,
        and the no-tumour decision stored with the model that made the heatmap if it carries one."""
        chosen = self.selection
        if chosen.mode == "paper":
            return chosen
        modality = self._modality()
        tuned = default_selection(modality)
        stored = self._model_decision()
        if stored is not None and modality in DEFAULT_SELECTIONS:  # a stored decision is the modality's, calibrated
            tuned = with_decision(tuned, stored)
        return replace(chosen, **{name: getattr(tuned, name) for name in ACROSS_SLICES})

    def _model_decision(self) -> tuple[float, float | None] | None:
        """The no-tumour decision stored with the model whose heatmap the image has (None: the modality's)."""
        image = self._image.value
        heatmap = heatmap_for(self._viewer, image) if image is not None else None
        return heatmap.metadata.get(MODEL_DECISION) if heatmap is not None else None

    @property
    def result(self) -> SliceResult | None:
        return self._result

    @property
    def rank(self) -> int:
        return self._rank

    def refresh(self) -> None:
        """Superpixels of the current slice, ranked by its heatmap; draws boundaries and the top candidate."""
        self._timer.stop()
        if self._refreshing:  # napari processed events while drawing: come back once this refresh is done
            self.schedule_refresh()
            return
        self._refreshing = True
        try:
            self._refresh()
        finally:
            self._refreshing = False

    def _refresh(self) -> None:
        image = self._image.value
        if image is None:
            return
        heatmap_layer = heatmap_for(self._viewer, image)
        if heatmap_layer is None:  # nothing to rank yet: no superpixels either (and no brain extraction)
            self._status.value = "run Localize first: candidates are ranked by the heatmap"
            return
        self._follow_modality()
        prepared = self._cache.get(image)
        if prepared is None:
            self._prepare(image)
            return
        index = current_slice(self._viewer, image)
        heatmap = np.zeros(prepared.image.shape[:2], np.float32)
        if heatmap_layer is not None and heatmap_layer.data.shape == image.data.shape:
            heatmap = np.asarray(heatmap_layer.data[index] if image.ndim == 3 else heatmap_layer.data, dtype=np.float32)
        try:
            result = segment_slice(prepared, index, heatmap, self.params, self.selection)
        except (InputError, ValueError) as exc:
            show_problem(f"superpixels failed: {exc}")
            return
        has_heatmap = bool(heatmap.any())
        self._result = result if has_heatmap else None
        self._rank = 0
        boundaries = _boundaries(result.superpixels, prepared.brain[:, :, index])
        self._draw(image, SUPERPIXELS_ROLE, index, boundaries, colormap="cyan", opacity=0.35)
        self._draw_candidate()
        if not has_heatmap:
            self._status.value = f"slice {index}: no heatmap yet; run Localize on this slice"

    def _prepare(self, image) -> None:
        """Brain mask and intensities for an image that Localize has not prepared yet (a worker: it can take seconds;
        the one Localize may have under way for it is waited for, not repeated)."""
        if self._preparing:
            return
        from .device import pick_device

        self._status.value = "preparing the scan (brain extraction)…"

        def done(value):
            self._preparing = False
            if isinstance(value, Failed):
                show_problem(value.message)
                self._status.value = value.message
            elif not self._closed:
                self.refresh()

        self._preparing = True  # before asking: a cached scan calls done at once
        self._cache.preparation(image, is_skull_stripped(image), pick_device("auto"), when_done=done)

    def _draw(self, image, wanted_role: str, index: int, plane: np.ndarray | None, **style):
        """Write ``plane`` into slice ``index`` of the overlay layer (created on first use), clearing the last slice drawn."""
        layer = layer_by_role(self._viewer, image, wanted_role)
        if layer is None or layer.data.shape != image.data.shape:
            if plane is None:
                return None
            active = self._viewer.layers.selection.active
            layer = self._viewer.add_image(np.zeros(image.data.shape, np.uint8), name=f"{image.name} {wanted_role}", blending="additive",
                                           contrast_limits=(0, 1), metadata=overlay_metadata(image, wanted_role), **overlay_geometry(image), **style)
            if active is not None:
                self._viewer.layers.selection.active = active
        if image.ndim == 2:
            layer.data[...] = 0 if plane is None else plane
        else:
            previous = self._drawn.get(wanted_role)
            if previous is not None and previous < layer.data.shape[0]:
                layer.data[previous] = 0
            if plane is not None:
                layer.data[index] = plane
            self._drawn[wanted_role] = index
        layer.refresh()
        return layer

    def _draw_candidate(self) -> None:
        image = self._image.value
        if image is None:
            return
        result = self._result
        if result is None or not result.candidates():
            self._draw(image, CANDIDATE_ROLE, result.index if result else 0, None)
            if result is not None:
                self._status.value = f"slice {result.index}: no candidate segment in the brain"
            return
        mask = self.candidate_mask()
        self._draw(image, CANDIDATE_ROLE, result.index, mask.astype(np.uint8), colormap="green", opacity=0.6)
        seed = result.candidates()[self._rank][0]
        self._status.value = (f"slice {result.index}: candidate {self._rank + 1} of {len(result.candidates())} "
                              f"(mean heatmap {seed.score:.1f}, {int(mask.sum())} px)")

    def candidate_mask(self) -> np.ndarray:
        """The current candidate on the current slice (restricted to the brain), 2D boolean."""
        if self._result is None:
            raise InputError("no candidate: run Localize on this slice first")
        return self._result.mask(self._rank)

    # ------------------------------------------------------------ actions

    def swap(self) -> None:
        """The next-ranked candidate (after the last comes the first again)."""
        if self._image_still_open() is None:
            return
        if self._result is None or not self._result.candidates():
            show_problem("no candidates on this slice yet: run Localize, then Segment")
            return
        self._rank = (self._rank + 1) % len(self._result.candidates())
        self._draw_candidate()

    def pick_at(self, world_position) -> bool:
        """Make the segment under ``world_position`` the candidate; False if it is not a candidate there."""
        image, result = self._image.value, self._result
        if image is None or result is None:
            return False
        position = np.round(image.world_to_data(world_position)).astype(int)
        if image.ndim == 3:
            if position[0] != result.index:
                return False
            position = position[1:]
        row, col = position
        if not (0 <= row < result.superpixels.shape[0] and 0 <= col < result.superpixels.shape[1]):
            return False
        label = int(result.superpixels[row, col])
        for rank, candidate in enumerate(result.candidates()):
            if any(segment.label == label for segment in candidate):
                self._rank = rank
                self._draw_candidate()
                return True
        self._status.value = "that segment lies mostly outside the brain; it is not a candidate"
        return False

    def select_labels(self, layer) -> None:
        """Accept into and export ``layer`` (it must be in the viewer)."""
        self._labels.reset_choices()
        self._labels.value = layer

    def labels_layer(self, create: bool = False):
        """The chosen labels layer; with ``create``, a new one with the image's shape, scale and metadata."""
        chosen = self._labels.value
        if chosen is not None and chosen != NEW_LABELS and chosen in self._viewer.layers:
            return chosen
        if not create:
            return None
        image = self._image.value
        metadata = {k: v for k, v in image.metadata.items() if k != ROLE}
        metadata[LABELS_OF] = image_key(image)
        layer = self._viewer.add_labels(np.zeros(image.data.shape, LABEL_DTYPE), name=f"{image.name} labels", metadata=metadata, **overlay_geometry(image))
        self._labels.reset_choices()
        self._labels.value = layer
        return layer

    def _image_still_open(self):
        """The chosen image, or None after saying so when it was closed (its candidates are dropped with it)."""
        image = self._image.value
        if image is None or image not in self._viewer.layers:
            self._result = None
            show_problem("choose an image: none is open, or the one segmented was closed")
            return None
        return image

    def accept(self) -> None:
        """Write the candidate into the labels layer with the chosen value (undoable with Ctrl-Z on that layer)."""
        image = self._image_still_open()
        if image is None:
            return
        warn_unless_axial_view(self._viewer, image)
        try:
            mask = self.candidate_mask()
        except InputError as exc:
            show_problem(str(exc))
            return
        if not mask.any():
            show_problem("the candidate is empty; nothing to accept")
            return
        labels = self._labels_fitting(image)
        if labels is None:
            return
        rows, cols = np.nonzero(mask)
        indices = (rows, cols) if image.ndim == 2 else (np.full(rows.shape, self._result.index), rows, cols)
        self._write(labels, indices, int(self._label_value.value))
        self._status.value = f"slice {self._result.index}: {rows.size} px accepted as label {self._label_value.value} in '{labels.name}'"

    def _labels_fitting(self, image):
        """The labels layer to write into (created if needed); None, after saying why, if it does not fit ``image``."""
        labels = self.labels_layer(create=True)
        owner = labels.metadata.get(LABELS_OF)  # None: a labels layer of the user's own
        if owner is not None and owner != image_key(image):
            show_problem(f"labels layer '{labels.name}' was made for another image; choose its own labels layer or '{NEW_LABELS}'")
            return None
        if labels.data.shape != image.data.shape:
            show_problem(f"labels layer '{labels.name}' has shape {labels.data.shape}, the image {image.data.shape}; choose another")
            return None
        return labels

    def _write(self, labels, indices: tuple, value: int) -> None:
        """One undoable write into ``labels``, then select that layer so that Ctrl-Z undoes it at once."""
        labels.data_setitem(indices, value)
        self._viewer.layers.selection.active = labels

    @property
    def labelling(self) -> bool:
        return self._labelling is not None

    def label_all(self) -> None:
        """Label every slice that has a heatmap as ``inpaint-seg segment`` does (:func:`label_all_job`, in a worker)."""
        image = self._image.value
        heatmap_layer = heatmap_for(self._viewer, image)
        prepared = self._cache.get(image) if image is not None else None
        if image is None or image.ndim != 3 or heatmap_layer is None or prepared is None or heatmap_layer.data.shape != image.data.shape:
            show_problem("Label all slices needs a 3D image with a heatmap: run Localize on the slices to label first")
            return
        if self._labelling is not None:
            return
        heatmaps = {index: np.array(plane, np.float32) for index, plane in enumerate(heatmap_layer.data) if plane.any()}
        if not heatmaps:
            show_problem("no slice has a heatmap yet: run Localize on the slices to label first")
            return
        labels = self._labels_fitting(image)
        if labels is None:
            return
        if self._timer.isActive():  # a re-ranking is due (a heatmap just changed): now, or it would overwrite this run's status
            self.refresh()
        self._follow_modality()  # a heatmap that lost its model's modality sends no event
        value, note = int(self._label_value.value), self._settings_note()

        def progress(done: int) -> None:
            self._status.value = f"labelling: {done}/{len(heatmaps)} slices"

        def finished() -> None:
            self._labelling = None

        self._labelling = make_job(label_all_job, prepared, heatmaps, self.params, self.volume_selection, unlocalised_slices(heatmap_layer, heatmaps, prepared.brain),
                                   yielded=progress,
                                   returned=lambda result: self._write_slices(labels, result, value, image.data.shape, note),
                                   errored=lambda exc: show_problem(f"labelling failed: {exc}"), finished=finished)
        self._labelling.start()

    def _settings_note(self) -> str:
        """What Label all slices decided with, for its status line."""
        if self.selection.mode == "paper":
            return "paper mode: the top segment of every slice"
        modality = self._modality()
        if modality not in DEFAULT_SELECTIONS:
            return "modality unknown: generic settings, no no-tumour decision"
        lesion = self.selection.lesion
        note = f"settings tuned for {modality}" + ("" if lesion == DEFAULT_SELECTIONS[modality].lesion else f", {lesion} lesion (Localize's error sign)")
        stored = self._model_decision()
        return note if stored is None else f"{note}, the model's own no-tumour decision (contrast {stored[0]:g})"

    def _write_slices(self, labels, masks: dict[int, np.ndarray], value: int, shape: tuple, note: str) -> None:
        """Write the labelled slices into ``labels`` in one undoable step, if the layer is still there and fits."""
        if labels not in self._viewer.layers or labels.data.shape != shape:
            show_problem(f"labels layer '{labels.name}' was removed or changed while labelling; nothing was written")
            return
        found = [(index, *np.nonzero(mask)) for index, mask in masks.items() if mask.any()]
        if not found:
            self._status.value = f"nothing stood out on the {len(masks)} slices with a heatmap: no label written ({note})"
            return
        slices = np.concatenate([np.full(rows.shape, index) for index, rows, _ in found])
        rows = np.concatenate([rows for _, rows, _ in found])
        cols = np.concatenate([cols for _, _, cols in found])
        self._write(labels, (slices, rows, cols), value)
        ml_per_voxel = voxel_volume_ml(labels.metadata.get(AFFINE)) if labels.ndim == 3 else None
        volume = f", {rows.size * ml_per_voxel:.2f} mL" if ml_per_voxel else ""
        self._status.value = f"{len(found)} of {len(masks)} slices with a heatmap labelled ({rows.size} px{volume}) as label {value} in '{labels.name}' ({note})"

    def _geometry_for_export(self, labels) -> tuple[dict, tuple]:
        """The metadata and scale to save ``labels`` with: its own, or, for a labels layer the user made with napari
        (no scan geometry of its own) that fits the chosen image, that image's, so the file lines up with the scan
        it was drawn on instead of being written in display order with a made-up affine."""
        from ._writer import open_scan_geometry

        own, image = (labels.metadata, tuple(labels.scale)), self._image.value
        if AFFINE in labels.metadata or image is None or image not in self._viewer.layers:
            return own
        return open_scan_geometry(labels.data.shape, None, [image]) or own  # the user chose the image: any scale

    def export(self, path: str | Path | None = None) -> Path | None:
        """Save the labels layer as NIfTI aligned with its source scan, with a sidecar (:meth:`_write_sidecar`); asks
        before replacing a file."""
        from napari.utils.notifications import show_info

        from ._writer import labels_for_writing
        from .io import write_labels

        labels = self.labels_layer()
        if labels is None:
            show_problem("there is no labels layer to export yet: accept a candidate first")
            return None
        metadata, scale = self._geometry_for_export(labels)
        path = Path(path) if path else self.ask_path(default_export_path(labels))
        if not path:
            return None
        force = False
        if path.exists():
            if not self.confirm_overwrite(path):
                self._status.value = f"not exported: {path.name} exists"
                return None
            force = True
        try:
            data, like = labels_for_writing(labels.data, metadata, scale)
            write_labels(path, data, like, force=force)
        except InputError as exc:
            show_problem(str(exc))
            return None
        show_info(f"labels saved to {path}; {self._write_sidecar(path, data, like.affine)}")
        self._status.value = f"exported {path}"
        return path

    def _write_sidecar(self, path: Path, data: np.ndarray, affine: np.ndarray | None) -> str:
        """Beside labels just exported, what made them (:mod:`.provenance`): a sidecar the command line wrote gains
        an edit, as napari's File > Save does; otherwise the widget's own record is written (replacing one it wrote
        before: a new export is a new record). A JSON file another tool wrote is left alone. Returns what was done,
        for the message."""
        from .cohort import label_summary
        from .provenance import NAPARI, napari_labels_record, record_edit, sidecar_maker, sidecar_path, write_sidecar

        sidecar = sidecar_path(path)
        try:
            maker = sidecar_maker(path)
            if maker == "command line":
                record_edit(path, data, affine, "napari-inpaint-seg: Export labels")
                return f"{sidecar.name} notes the edit"
            if maker not in (None, NAPARI):
                return f"{sidecar.name} is not this tool's and was left as it is (no record written)"
            image = self._image.value
            heatmap = heatmap_for(self._viewer, image) if image is not None else None
            record = napari_labels_record(
                scan=image.metadata.get(SOURCE_PATH) if image is not None else None, modality=self._modality(),
                localiser_runs=heatmap.metadata.get(LOCALISER_RUNS, []) if heatmap is not None else [],
                felzenszwalb=self.params, selection=self.volume_selection, summary=label_summary(data, affine),
            )
            write_sidecar(sidecar, record)
        except OSError as exc:
            return f"{sidecar.name} could not be written ({exc})"
        return f"{sidecar.name} records how they were made"


def _painting(viewer) -> bool:
    """True while the active layer is being edited (painting, filling, drawing): clicks belong to that tool."""
    active = viewer.layers.selection.active
    return active is not None and getattr(active, "mode", "pan_zoom") not in ("pan_zoom", "transform")


def _boundaries(superpixels: np.ndarray, brain: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    return (find_boundaries(superpixels, mode="inner") & brain).astype(np.uint8)

