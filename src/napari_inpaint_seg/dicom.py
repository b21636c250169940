"""Reading a DICOM series (a folder of slices, as a scanner or PACS exports it) as a :class:`~.io.Scan`.

SimpleITK's GDCM reader sorts the slices by position, applies the rescale slope and intercept, and gives the
geometry in DICOM's patient coordinates (LPS); the affine here is the NIfTI convention (RAS), so a series and the
NIfTI a converter would make of it lie in the same place, and a series whose slices lie otherwise than the
training slices is turned like any scan (:mod:`.orientation`). Labels made on a series are written as NIfTI.
"""

from __future__ import annotations

import locale
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import InputError, first_line
from .io import Scan, check_size

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
DICOM_MAGIC_OFFSET = 128  # a DICOM file has "DICM" after a 128-byte preamble
LOOKED_AT = 20  # files checked before a folder is taken for one without DICOM


def holds_dicom(folder: str | Path) -> bool:
    """Whether one of the first files of ``folder`` is a DICOM file (cheap: napari asks this of every folder opened)."""
    try:
        files = [entry for entry in sorted(Path(folder).iterdir()) if entry.is_file()][:LOOKED_AT]
    except OSError:
        return False
    for file in files:
        try:
            with open(file, "rb") as handle:
                handle.seek(DICOM_MAGIC_OFFSET)
                if handle.read(4) == b"DICM":
                    return True
        except OSError:
            continue
    return False


@contextmanager
def kept_locale() -> Iterator[None]:
    """GDCM sets the C locale for its number formats and leaves it so (seen when writing a series): Python would then
    decode every subprocess's output as ASCII. The locale is put back as it was."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def read_dicom_series(folder: Path) -> Scan:
    """The one DICOM series in ``folder``: voxels in SimpleITK's index order (column, row, slice), float32, with
    its RAS affine; ``header`` None (a NIfTI header is made when labels are written)."""
    no_series = InputError(f"{folder}: is a folder without a DICOM series; give a scan file, or a folder holding one DICOM series")
    if not holds_dicom(folder):
        raise no_series
    import SimpleITK as sitk

    with kept_locale():
        image = _read_series(folder, no_series)
    data = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)).astype(np.float32)  # (slice, row, column) -> index order
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ np.reshape(image.GetDirection(), (3, 3)) @ np.diag(image.GetSpacing())
    affine[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin())
    return Scan(data=data, affine=affine, header=None, path=folder)


def _read_series(folder: Path, no_series: InputError):
    """The SimpleITK image of the one series in ``folder``."""
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # ITK's warnings go to stderr, past the one-line error messages
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series:  # DICOM files, but none GDCM can put in a series
        raise no_series
    if len(series) > 1:
        raise InputError(f"{folder}: holds {len(series)} DICOM series; put each in a folder of its own and give that folder")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0])
    try:
        first = sitk.ImageFileReader()
        first.SetFileName(files[0])
        first.ReadImageInformation()
        if first.GetNumberOfComponents() != 1:
            raise InputError(f"{folder}: a DICOM series of colour or complex voxels is not supported; give a greyscale series")
        check_size(folder, (*first.GetSize()[:2], len(files)))
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        return reader.Execute()
    except RuntimeError as exc:  # SimpleITK reports unreadable or inconsistent files so
        raise InputError(f"{folder}: the DICOM series could not be read ({first_line(exc)})") from exc
