"""What the Localize and Segment widgets share: running jobs, the prepared-scan cache, layer lookups.

Jobs are generator functions. By default they run in napari's ``thread_worker`` (their yields reach the main
thread as ``yielded`` signals); with ``NAPARI_INPAINT_SEG_SYNC=1`` they run inline, callbacks and all, which
makes tests and scripted screenshots deterministic. Problems the user can fix (:class:`InputError`) become
napari notifications; anything else goes to napari's error notification with its traceback.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .display import ROLE, SKULL_STRIPPED, pipeline_scan
from .pipeline import PreparedScan, prepare_scan

SYNC_ENV = "NAPARI_INPAINT_SEG_SYNC"
HEATMAP_ROLE = "heatmap"
SUPERPIXELS_ROLE = "superpixels"
CANDIDATE_ROLE = "candidate"
HEATMAP_OF = "heatmap_of"  # overlay metadata: the name of the image it was computed on (for people reading it)
OVERLAY_OF = "inpaint_seg_overlay_of"  # overlay metadata: the key of that image (:func:`image_key`)
LABELS_OF = "inpaint_seg_labels_of"  # metadata of a labels layer the Segment widget made: the key of its image
MODEL_MODALITY = "inpaint_seg_model_modality"  # heatmap metadata: the modality of the model that made it
MODEL_DECISION = "inpaint_seg_model_decision"  # heatmap metadata: (min_contrast, grow_contrast) stored with that model, or None
LOCALISER_RUNS = "inpaint_seg_localiser_runs"  # heatmap metadata: the models and settings behind each slice's heat (for sidecars)
RESAMPLED_OF = "inpaint_seg_resampled_of"  # metadata of a scan resampled in-plane in the viewer: the key of the original


def run_synchronously() -> bool:
    return os.environ.get(SYNC_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class Failed:
    """Returned by a job instead of raising when the user can fix the problem; the message is shown as is."""

    message: str


class _InlineJob:
    """Runs a generator job in the caller's thread with the same callbacks as a napari worker."""

    def __init__(self, job: Iterator, callbacks: dict[str, Callable]):
        self._job, self._callbacks, self._abort = job, callbacks, False

    def quit(self) -> None:
        self._abort = True

    def start(self) -> None:
        emit = lambda name, *args: self._callbacks.get(name, lambda *a: None)(*args)  # noqa: E731
        try:
            while True:
                try:
                    value = next(self._job)
                except StopIteration as stop:
                    emit("returned", stop.value)
                    break
                emit("yielded", value)
                if self._abort:
                    self._job.close()
                    emit("aborted")
                    break
        except Exception as exc:  # mirrors the worker's errored signal
            emit("errored", exc)
            from napari.utils.notifications import notification_manager

            notification_manager.receive_error(type(exc), exc, exc.__traceback__)
        finally:
            emit("finished")


class _InOrder:
    """Delivers a job's callbacks one at a time, in the order the job emitted them.

    napari's widgets call ``QApplication.processEvents`` (a progress bar moving, a new layer's controls), so the
    next queued signal (even ``aborted`` or ``finished``) can otherwise run in the middle of a ``yielded`` callback.
    """

    def __init__(self, callbacks: dict[str, Callable]):
        self._callbacks, self._queue, self._busy = callbacks, deque(), False

    def slot(self, name: str) -> Callable:
        return lambda *args: self._deliver(name, args)

    def _deliver(self, name: str, args: tuple) -> None:
        self._queue.append((name, args))
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                name, args = self._queue.popleft()
                self._callbacks[name](*args)
        finally:
            self._busy = False


class JobError(Exception):
    """A job's RuntimeError, raised again as this type (see :func:`reporting_runtime_errors`)."""


def reporting_runtime_errors(job_function: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """``job_function`` with its RuntimeErrors raised as :class:`JobError`.

    superqt's worker takes any RuntimeError for "the worker was deleted" and then emits neither ``errored`` nor
    ``finished``, so a widget would stay busy for good; torch reports most failures (out of memory among them)
    as RuntimeErrors.
    """

    def job(*args):
        try:
            return (yield from job_function(*args))
        except RuntimeError as exc:
            raise JobError(f"{type(exc).__name__}: {exc}") from exc

    return job


def make_job(job_function: Callable[..., Iterator], *args, **callbacks: Callable):
    """A job running ``job_function(*args)`` with callbacks among yielded/returned/errored/aborted/finished.

    Not started yet: keep the handle first, then call ``.start()`` (an inline job finishes inside ``start``).
    """
    in_order = _InOrder(callbacks)
    slots = {name: in_order.slot(name) for name in callbacks}
    if run_synchronously():
        return _InlineJob(job_function(*args), slots)
    from napari.qt.threading import create_worker

    worker = create_worker(reporting_runtime_errors(job_function), *args, _start_thread=False)
    for name, slot in slots.items():
        getattr(worker, name).connect(slot)
    return worker


def show_problem(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(f"napari-inpaint-seg: {message}")


# ---------------------------------------------------------------- prepared scans (brain mask + intensity)


class PreparedCache:
    """One :class:`PreparedScan` per image layer, kept while the layer (and its data array) lives, and the
    preparations under way, so that no scan is brain-extracted twice at once.

    Brain extraction takes seconds; both widgets reuse the result for every slice and every run. The Localize
    widget starts it in the background as soon as a scan is chosen, and a Run clicked meanwhile waits for that
    preparation instead of starting its own. Call it from the main thread only; worker threads wait on the
    futures it hands out.
    """

    def __init__(self) -> None:
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._underway: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> _Preparation

    def get(self, layer, skull_stripped: bool | None = None) -> PreparedScan | None:
        """The cached result for this layer's current data (of the given kind, or any kind when None)."""
        entry = self._entries.get(layer)
        if entry is None or entry[0] is not layer.data:
            return None
        if skull_stripped is not None and entry[1] != skull_stripped:
            return None
        return entry[2]

    def put(self, layer, skull_stripped: bool, prepared: PreparedScan, data: np.ndarray | None = None) -> None:
        """Remember ``prepared`` for ``layer`` as long as the layer holds ``data`` (default: its current data)."""
        self._entries[layer] = (layer.data if data is None else data, skull_stripped, prepared)

    def preparation(self, layer, skull_stripped: bool, device: str, when_done: Callable[[PreparedScan | Failed], None] | None = None) -> Future:
        """A future of ``layer`` prepared: already done when cached, else the preparation under way for the same
        data and kind, else a new one in a worker. Its exception, if any, is the preparation's (an InputError
        says what is wrong with the scan). ``when_done`` is called in the main thread with the result, or a
        :class:`Failed` with the message; a failed preparation is not kept, so the next request tries again."""
        cached = self.get(layer, skull_stripped)
        if cached is not None:
            future = Future()
            future.set_result(cached)
            if when_done is not None:
                when_done(cached)
            return future
        underway = self._underway.get(layer)
        start = underway is None or underway.data is not layer.data or underway.skull_stripped != skull_stripped
        if start:  # a preparation of other data or kind goes on unreferenced; its result is kept only if nothing else is
            underway = self._underway[layer] = _Preparation(layer.data, skull_stripped)
        if when_done is not None:
            underway.when_done.append(when_done)
        if start:
            make_job(_prepare_job, underway, dict(layer.metadata), tuple(layer.scale), device, returned=lambda _: self._finish(layer, underway)).start()
        return underway.future

    def _finish(self, layer, underway: _Preparation) -> None:
        current = self._underway.get(layer) is underway  # else a preparation of other data or kind was asked for since
        if current:
            del self._underway[layer]
        try:
            prepared = underway.future.result()
        except Exception as exc:  # the job kept it in the future
            result = Failed(str(exc))
        else:
            result = prepared
            if layer.data is underway.data and (current or self.get(layer) is None):
                self.put(layer, underway.skull_stripped, prepared, data=underway.data)
        for callback in underway.when_done:
            callback(result)

    def busy(self) -> bool:
        """Whether a preparation is under way."""
        return len(self._underway) > 0

    def clear(self) -> None:
        self._entries.clear()
        self._underway.clear()


@dataclass
class _Preparation:
    """A preparation under way: of which data and kind, its future, who wants to know when it is done."""

    data: np.ndarray
    skull_stripped: bool
    future: Future = field(default_factory=Future)
    when_done: list[Callable] = field(default_factory=list)


def _prepare_job(underway: _Preparation, metadata: dict, scale, device: str):
    """Worker body: prepare the scan into ``underway.future``, whatever happens (a Run may be waiting on it)."""
    yield from ()  # every job is a generator
    try:
        underway.future.set_result(prepare_layer_data(underway.data, metadata, scale, underway.skull_stripped, device))
    except Exception as exc:
        underway.future.set_exception(exc)


def wait_for(future: Future, poll_seconds: float = 0.05) -> Iterator[None]:
    """In a job: yield now and then (so that Cancel can stop the job) until ``future`` is done."""
    while not futures.wait([future], timeout=poll_seconds).done:
        yield None


PREPARED = PreparedCache()


def prepare_layer_data(data: np.ndarray, metadata: dict, scale, skull_stripped: bool, device: str) -> PreparedScan:
    """Prepare a layer's display-order data for the pipeline (worker thread: pure computation, no layer access)."""
    scan = pipeline_scan(np.asarray(data), metadata, scale)
    return prepare_scan(scan, skull_stripped=skull_stripped, device=device)


def is_skull_stripped(layer) -> bool:
    return bool(layer is not None and layer.metadata.get(SKULL_STRIPPED, False))


# ---------------------------------------------------------------- layers


def role(layer) -> str | None:
    return layer.metadata.get(ROLE) if layer is not None else None


def scan_layers(viewer) -> list:
    """Image layers that are scans (not the heatmaps and overlays the widgets draw)."""
    from napari.layers import Image

    return [layer for layer in viewer.layers if isinstance(layer, Image) and role(layer) is None and layer.ndim in (2, 3) and not layer.rgb]


_IMAGE_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def image_key(image) -> str:
    """A key of this image layer object for its overlays: kept through a rename, not shared with a new layer
    that happens to get the same name (a scan closed and another opened) nor with a duplicated layer."""
    if image not in _IMAGE_KEYS:
        _IMAGE_KEYS[image] = uuid.uuid4().hex
    return _IMAGE_KEYS[image]


def belongs_to(layer, image) -> bool:
    return image is not None and layer.metadata.get(OVERLAY_OF) == image_key(image)


def heatmap_for(viewer, image) -> object | None:
    """The heatmap layer computed on ``image``, if any."""
    return layer_by_role(viewer, image, HEATMAP_ROLE)


def layer_by_role(viewer, image, wanted: str):
    """The image layer of role ``wanted`` drawn over ``image`` (not a layer converted from it, e.g. to labels)."""
    from napari.layers import Image

    for layer in viewer.layers:
        if isinstance(layer, Image) and role(layer) == wanted and belongs_to(layer, image):
            return layer
    return None


def overlay_metadata(image, wanted_role: str) -> dict:
    """Metadata for a layer drawn over ``image``: the image's geometry plus what it is and what it belongs to."""
    metadata = {k: v for k, v in image.metadata.items() if k != ROLE}
    metadata.update({ROLE: wanted_role, HEATMAP_OF: image.name, OVERLAY_OF: image_key(image)})
    return metadata


def overlay_geometry(image) -> dict:
    """Where a layer drawn over ``image`` goes in the world: all of the image's transform, rotation included."""
    return {"scale": image.scale, "translate": image.translate, "rotate": image.rotate, "shear": image.shear, "affine": image.affine}


def current_slice(viewer, image) -> int:
    """Index of the axial slice shown for ``image`` (display axis 0); 0 for 2D images."""
    if image.ndim == 2:
        return 0
    position = image.world_to_data(viewer.dims.point)
    return int(np.clip(np.round(position[0]), 0, image.data.shape[0] - 1))


def warn_unless_axial_view(viewer, image) -> None:
    """Localize and Accept act on the axial slice under the slider; say so when the canvas shows something else
    (dimensions rolled to another plane, or the 3D view), or the user would label a slice they cannot see."""
    if image is None or image.ndim != 3:
        return
    dims = viewer.dims
    if dims.ndisplay == 3 or tuple(dims.displayed) != (dims.ndim - 2, dims.ndim - 1):
        from napari.utils.notifications import show_warning

        show_warning(f"napari-inpaint-seg: the view is not the axial slices; this acts on axial slice {current_slice(viewer, image)} "
                     "(roll the dimensions back, in 2D, to see it)")
