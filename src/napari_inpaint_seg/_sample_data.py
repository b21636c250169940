"""Sample data: the MNI152 T1 template that ships inside nilearn (nothing is downloaded), with and without a
SYNTHETIC lesion.

The template is a healthy, skull-stripped average brain, so the widgets' "scan is already skull-stripped" option
is preset. It is reoriented (affine updated, same world coordinates) so that its axial slices look like the LGG
training slices: anterior at the top, the patient's right on the left of the image.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from .display import AXIAL_AXIS, MODALITY, ROLE, SKULL_STRIPPED, TRUTH_ROLE, image_layer_data, to_display
from .io import Scan
from .orientation import reoriented

# Centre (voxel indices in the reoriented template) and radii of the synthetic lesion: right frontal white matter.
LESION_CENTRE = (70, 70, 100)
LESION_RADII = (14.0, 11.0, 9.0)


def mni152_scan() -> Scan:
    """The 1 mm MNI152 T1 template as a :class:`Scan` in the training orientation (:func:`~.orientation.reoriented`:
    the lesion's centre is given in its voxels), intensities in [0, 1]."""
    from nilearn.datasets import load_mni152_template

    image = load_mni152_template(resolution=1)
    turned = reoriented(Scan(data=np.asarray(image.get_fdata(dtype=np.float32)), affine=np.asarray(image.affine, dtype=np.float64), header=None))
    header = nib.Nifti1Header()
    header.set_data_shape(turned.data.shape)
    header.set_zooms(nib.affines.voxel_sizes(turned.affine))
    header.set_qform(turned.affine, code=4)  # 4: MNI152 space
    header.set_sform(turned.affine, code=4)
    return Scan(data=turned.data, affine=turned.affine, header=header, path=None)


def synthetic_lesion(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A soft, irregular ellipsoid in [0, 1] (1 in the core) at :data:`LESION_CENTRE`; not real pathology."""
    rng = np.random.default_rng(seed)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, LESION_CENTRE, LESION_RADII))
    wobble = 0.15 * np.sin(0.35 * grids[0] + 1.3) * np.cos(0.3 * grids[1]) + 0.03 * rng.standard_normal(shape)
    return np.clip((1.25 - np.sqrt(distance) - wobble) / 0.5, 0.0, 1.0).astype(np.float32)


def mni152_synthetic_lesion_scan() -> tuple[Scan, np.ndarray]:
    """The template with a synthetic T1-hypointense lesion (like a low-grade glioma on T1) and its 0/1 mask."""
    scan = mni152_scan()
    lesion = synthetic_lesion(scan.data.shape)
    brain = scan.data > 0
    texture = 0.05 * np.random.default_rng(1).standard_normal(scan.data.shape).astype(np.float32)
    lesioned = np.where(brain, scan.data * (1 - 0.55 * lesion) + texture * lesion, 0).astype(np.float32)
    mask = (lesion > 0.5) & brain
    return Scan(data=lesioned, affine=scan.affine, header=scan.header, path=None), mask


def mni152() -> list[tuple]:
    return [image_layer_data(mni152_scan(), name="MNI152 T1", **{SKULL_STRIPPED: True, MODALITY: "t1"})]


def mni152_synthetic_lesion() -> list[tuple]:
    """The lesioned template and, hidden, its lesion as a labels layer to compare an answer with; the layer is
    marked as a reference, so the Segment widget never offers it as the layer to accept candidates into."""
    scan, mask = mni152_synthetic_lesion_scan()
    image = image_layer_data(scan, name="MNI152 T1 + synthetic lesion", **{SKULL_STRIPPED: True, MODALITY: "t1"})
    truth = (to_display(mask, image[1]["metadata"][AXIAL_AXIS]).astype(np.uint8),
             {"name": "synthetic lesion (truth)", "scale": image[1]["scale"], "metadata": {**image[1]["metadata"], ROLE: TRUTH_ROLE},
              "visible": False, "opacity": 0.5},
             "labels")
    return [image, truth]
