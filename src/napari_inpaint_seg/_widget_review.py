"""Review widget: a cohort's cases one after the other, each accepted, corrected or rejected.

It opens a folder written by ``inpaint-seg segment --out-dir`` and shows one case at a time, its scan with its labels
as the Segment widget's labels layer (so Swap, Accept and napari's painting tools correct them). Each verdict is
kept in the folder's review table (:mod:`.review`) and the next case opens; corrected labels are written back to
their file, whose sidecar notes the edit. Labels changed and not saved are never dropped without asking.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from magicgui.widgets import Container, FileEdit, Label, LineEdit, PushButton

from ._widget_common import RESAMPLED_OF, belongs_to, image_key, show_problem
from .errors import InputError
from .review import Case, first_unreviewed, read_cases, read_verdicts, record_verdict

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def ask_about_changes(parent, case: Case) -> str:
    """Qt question: save the changed labels of ``case``, discard them, or stay on the case."""
    from qtpy.QtWidgets import QMessageBox

    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(parent, "Labels changed", f"The labels of {case.scan.name} were changed. Save them to {case.labels.name}?",
                                  buttons.Save | buttons.Discard | buttons.Cancel, buttons.Cancel)
    return {buttons.Save: SAVE, buttons.Discard: DISCARD}.get(answer, CANCEL)


class ReviewWidget(Container):
    """A cohort folder's cases, a verdict each: Accept, Save corrections, Reject; Previous and Next to move."""

    def __init__(self, napari_viewer, *, ask_changes: Callable[[Case], str] | None = None):
        super().__init__()
        self._viewer = napari_viewer
        # Injectable question (tests answer it): ask_changes(case) -> "save" | "discard" | "cancel".
        self.ask_changes = ask_changes or (lambda case: ask_about_changes(self.native, case))
        self._folder_path: Path | None = None
        self._cases: list[Case] = []
        self._position: int | None = None
        self._case_image = self._case_labels = None  # not _image/_labels: magicgui's Container keeps its own _labels
        self._as_opened: np.ndarray | None = None  # the labels as read, to tell whether they were changed

        self._folder = FileEdit(label="cohort folder", mode="d", tooltip="the --out-dir folder of an inpaint-seg segment run")
        self._open = PushButton(text="Open cohort")
        self._case = Label(value="no cohort open")
        self._previous = PushButton(text="◀ Previous")
        self._next = PushButton(text="Next ▶")
        self._note = LineEdit(label="note", tooltip="kept with the verdict in the review table")
        self._accept = PushButton(text="Accept", tooltip="the labels are right as they are")
        self._save = PushButton(text="Save corrections", tooltip="write the corrected labels back to their file (its sidecar notes the edit)")
        self._reject = PushButton(text="Reject", tooltip="the labels are wrong and not worth correcting here; their file is left as it is")
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        self.extend([self._folder, self._open, self._case, Container(widgets=[self._previous, self._next], layout="horizontal", labels=False),
                     self._note, Container(widgets=[self._accept, self._save, self._reject], layout="horizontal", labels=False), self._status])
        self._open.clicked.connect(lambda: self.open_cohort(self._folder.value))
        self._previous.clicked.connect(lambda: self.move(-1))
        self._next.clicked.connect(lambda: self.move(+1))
        self._accept.clicked.connect(lambda: self.give_verdict("accepted"))
        self._save.clicked.connect(self.save_corrections)
        self._reject.clicked.connect(lambda: self.give_verdict("rejected"))

    # ------------------------------------------------------------ navigation

    @property
    def case(self) -> Case | None:
        return None if self._position is None else self._cases[self._position]

    def open_cohort(self, folder: str | Path) -> bool:
        """Read the folder's cases and open the first without a verdict."""
        try:
            cases = read_cases(Path(folder))
        except InputError as exc:
            show_problem(str(exc))
            return False
        if not self.leave_case():
            return False
        self._folder_path, self._cases, self._position = Path(folder), cases, None
        self._folder.value = folder
        return self.open_case(first_unreviewed(cases, read_verdicts(self._folder_path)))

    def move(self, step: int) -> bool:
        if self._position is None:
            return False
        target = self._position + step
        if not 0 <= target < len(self._cases):
            self._status.value = f"no case {'before the first' if target < 0 else 'after the last'}; {self._progress()}"
            return False
        return self.open_case(target)

    def open_case(self, position: int) -> bool:
        """Show case ``position`` in place of the one shown (after asking about its changed labels)."""
        from .launcher import add_scan_layers, labels_layer_data_for, scan_layer_data, show_in_widgets

        if not self.leave_case():
            return False
        case = self._cases[position]
        try:
            layer_data = scan_layer_data(case.scan, case.modality, case.skull_stripped)
            labels_data = labels_layer_data_for(case.labels, layer_data, case.scan)
        except InputError as exc:
            show_problem(f"case {position + 1} cannot be opened: {exc}")
            return False
        self._close_case_layers()
        self._case_image, self._case_labels = add_scan_layers(self._viewer, layer_data, labels_data)
        self._as_opened = np.array(self._case_labels.data, copy=True)
        self._position = position
        show_in_widgets(self._viewer, self._case_image, self._case_labels)
        verdict = read_verdicts(self._folder_path).get(case.labels.name)
        self._note.value = verdict["note"] if verdict else ""
        self._case.value = f"case {position + 1} of {len(self._cases)}: {case.scan.name}" + (f" ({case.tumour_ml} mL)" if case.tumour_ml else "")
        self._status.value = f"{'verdict: ' + verdict['verdict'] if verdict else 'no verdict yet'}; {self._progress()}"
        return True

    def leave_case(self) -> bool:
        """Whether the shown case may be left: its labels unchanged, or saved or discarded as the user answers."""
        if not self.labels_changed():
            return True
        answer = self.ask_changes(self.case)
        if answer == SAVE:
            return self._write_labels()
        if answer == DISCARD:
            self._as_opened = np.array(self._case_labels.data, copy=True)  # asked once: not again before the layers close
            return True
        return False

    def labels_changed(self) -> bool:
        """Whether the shown case's labels differ from its file (painted, accepted candidates, Label all slices)."""
        return self._case_labels is not None and self._case_labels in self._viewer.layers and not np.array_equal(self._case_labels.data, self._as_opened)

    def _close_case_layers(self) -> None:
        """Remove the shown case's scan, its labels, the scan resampled in-plane from it, and what the widgets drew
        over either (heatmaps, candidates). Labels layers the user made are left: they may hold unsaved work."""
        if self._case_image is None:
            return
        key = image_key(self._case_image)
        scans = [self._case_image, *(layer for layer in self._viewer.layers if layer.metadata.get(RESAMPLED_OF) == key)]
        for layer in list(self._viewer.layers):
            if layer == self._case_labels or any(layer == scan or belongs_to(layer, scan) for scan in scans):  # ==: napari hands plugins proxies
                self._viewer.layers.remove(layer)
        self._case_image = self._case_labels = None

    # ------------------------------------------------------------ verdicts

    def give_verdict(self, verdict: str) -> bool:
        """Record ``verdict`` for the shown case and open the next; refused while its labels have unsaved changes
        (saving them is a correction; going on asks whether to drop them)."""
        if self.case is None:
            show_problem("open a cohort first")
            return False
        if self.labels_changed():
            self._status.value = "the labels were changed: Save corrections, or go to another case to discard the changes"
            return False
        return self._record_and_go_on(verdict)

    def save_corrections(self) -> bool:
        """Write the shown labels back to the case's file, record the verdict "corrected" and open the next case."""
        if self.case is None:
            show_problem("open a cohort first")
            return False
        return self._write_labels() and self._record_and_go_on("corrected")

    def _write_labels(self) -> bool:
        from ._writer import labels_for_writing
        from .io import write_labels
        from .provenance import record_edit

        try:
            data, like = labels_for_writing(self._case_labels.data, self._case_labels.metadata, tuple(self._case_labels.scale))
            write_labels(self.case.labels, data, like, force=True)
            record_edit(self.case.labels, data, like.affine, "napari-inpaint-seg: cohort review")
        except InputError as exc:
            show_problem(str(exc))
            return False
        self._as_opened = np.array(self._case_labels.data, copy=True)
        return True

    def _record_and_go_on(self, verdict: str) -> bool:
        from ._writer import labels_for_writing
        from .cohort import label_summary

        try:
            data, like = labels_for_writing(self._case_labels.data, self._case_labels.metadata, tuple(self._case_labels.scale))  # in the file's order
            record_verdict(self._folder_path, self.case, verdict, self._note.value, label_summary(data, like.affine).ml)
        except InputError as exc:
            show_problem(str(exc))
            return False
        if self._position + 1 < len(self._cases):
            return self.open_case(self._position + 1)
        self._status.value = f"verdict: {verdict}; that was the last case; {self._progress()}"
        return True

    def _progress(self) -> str:
        verdicts = read_verdicts(self._folder_path) if self._folder_path else {}
        return f"{sum(case.labels.name in verdicts for case in self._cases)} of {len(self._cases)} cases have a verdict"
