"""Reviewing a cohort's labels case by case: which cases a folder of ``inpaint-seg segment --out-dir`` holds, and
the verdict given to each.

After a cohort is segmented, someone looks at every case: accepts the labels, corrects them, or rejects them (a
label on the orbits, a lesion the method missed). A study reports how many needed which, so the verdicts are kept
beside the labels, in a table that any spreadsheet opens, rewritten after every verdict.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path

from .cohort import SUMMARY_NAME
from .errors import InputError

REVIEW_NAME = "inpaint-seg-review.csv"
REVIEW_COLUMNS = ("labels", "scan", "verdict", "note", "tumour_ml", "reviewed_at")
VERDICTS = ("accepted", "corrected", "rejected")


@dataclass(frozen=True)
class Case:
    """One scan of a cohort folder and its labels; ``modality`` as the cohort run resolved it, ``skull_stripped``
    when it was segmented without brain extraction."""

    scan: Path
    labels: Path
    modality: str | None
    tumour_ml: str
    skull_stripped: bool = False


def made_from(labels: Path, listed: str) -> tuple[Path, bool]:
    """The scan a labels file was made from and whether it was taken as skull-stripped, by its sidecar when there is
    one (the summary holds the scan's path as given on the command line, which may be relative to wherever the
    cohort ran); else the listed path, with brain extraction."""
    from .provenance import sidecar_path

    try:
        record = json.loads(sidecar_path(labels).read_text())
        sources = record.get("Sources")
        if isinstance(sources, list) and sources and isinstance(sources[0], str):
            return Path(sources[0]), str(record.get("Geometry", {}).get("BrainExtraction", "")).startswith("none")
    except (OSError, ValueError, AttributeError):
        pass
    return Path(listed), False


def read_cases(folder: Path) -> list[Case]:
    """The cases of a cohort folder, in the summary's order: every scan whose labels file is there (failed scans
    have none). Refused with one line when the folder holds no cohort."""
    summary = Path(folder) / SUMMARY_NAME
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: not a folder")
    if not summary.is_file():
        raise InputError(f"{folder}: holds no {SUMMARY_NAME}; give the --out-dir folder of an inpaint-seg segment run")
    with open(summary, newline="") as handle:
        rows = list(csv.DictReader(handle))
    cases = []
    for row in rows:
        if not row.get("labels"):
            continue
        labels = Path(folder) / Path(row["labels"]).name  # the folder may have moved since
        if labels.is_file():
            scan, skull_stripped = made_from(labels, row["scan"])
            cases.append(Case(scan, labels, row.get("modality") or None, row.get("tumour_ml", ""), skull_stripped))
    if not cases:
        raise InputError(f"{summary}: lists no labels file that is in {folder}")
    return cases


def read_verdicts(folder: Path) -> dict[str, dict]:
    """The verdicts given so far, keyed by labels file name (empty before the first)."""
    path = Path(folder) / REVIEW_NAME
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row["labels"]: row for row in csv.DictReader(handle) if row.get("labels")}


def record_verdict(folder: Path, case: Case, verdict: str, note: str = "", tumour_ml: float | None = None) -> None:
    """Add or replace ``case``'s verdict in the folder's review table, rewritten atomically: a review stopped at any
    point keeps every verdict given before."""
    from .io import write_atomically

    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    verdicts = read_verdicts(folder)
    verdicts[case.labels.name] = {
        "labels": case.labels.name, "scan": str(case.scan), "verdict": verdict, "note": note,
        "tumour_ml": "" if tumour_ml is None else f"{tumour_ml:.3f}", "reviewed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    text = StringIO()
    writer = csv.DictWriter(text, fieldnames=REVIEW_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(verdicts.values())
    write_atomically(Path(folder) / REVIEW_NAME, lambda tmp: Path(tmp).write_text(text.getvalue()))


def first_unreviewed(cases: list[Case], verdicts: dict[str, dict]) -> int:
    """Where a review resumes: the first case without a verdict (the first case when all have one)."""
    return next((position for position, case in enumerate(cases) if case.labels.name not in verdicts), 0)
