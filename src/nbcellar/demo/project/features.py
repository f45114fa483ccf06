"""Preprocessing for the digits notebook: deformed copies of the training images, and an
embedding fitted on them so that it has seen the small shifts, tilts and wobbles of handwriting.

Everything is seeded: the same images give the same embedding, run after run.
"""

# mypy: disable-error-code="import-untyped"
# (scipy and scikit-learn come without type hints that mypy can read)

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from sklearn.decomposition import KernelPCA
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

Images = NDArray[np.float64]
"""A stack of grey-level images, shape (count, height, width), values in [0, 1]."""


def upsample(images: Images, factor: int = 2) -> Images:
    """The images ``factor`` times larger (bilinear), so that rotating and warping them blurs
    less; the 8x8 digits become 16x16."""
    larger: Images = ndimage.zoom(images, (1, factor, factor), order=1)
    return np.clip(larger, 0.0, 1.0)


def deform(
    image: Images, rng: np.random.Generator, max_angle: float = 12.0, strength: float = 1.5
) -> Images:
    """One random variant of ``image``: rotated by up to ``max_angle`` degrees, then warped by a
    smooth random displacement field scaled by ``strength`` (an elastic distortion)."""
    tilted = ndimage.rotate(image, rng.uniform(-max_angle, max_angle), reshape=False, order=1)
    dy, dx = (ndimage.gaussian_filter(rng.uniform(-1, 1, image.shape), 1.0) for _ in range(2))
    rows, cols = np.indices(image.shape, dtype=np.float64)
    coords = [rows + strength * dy, cols + strength * dx]
    warped: Images = ndimage.map_coordinates(tilted, coords, order=1, mode="constant")
    return np.clip(warped, 0.0, 1.0)


def augment(images: Images, copies: int = 4, random_state: int = 0) -> Images:
    """The images followed by ``copies`` deformed variants of each (``copies + 1`` times as
    many images in all)."""
    rng = np.random.default_rng(random_state)
    variants = [np.stack([deform(image, rng) for image in images]) for _ in range(copies)]
    return np.concatenate([images, *variants])


def flatten(images: Images) -> NDArray[np.float64]:
    """One row of pixels per image, as scikit-learn's estimators expect."""
    return images.reshape(len(images), -1)


def embed(images: Images, n_components: int = 40, random_state: int = 0) -> Pipeline:
    """A fitted embedding of images into ``n_components`` standardised features: an RBF kernel
    PCA, non-linear, fitted on the augmented images so that its features describe the
    variations of handwriting it has seen rather than only the training images."""
    pipeline = make_pipeline(
        FunctionTransformer(flatten),
        KernelPCA(
            n_components=n_components,
            kernel="rbf",
            eigen_solver="randomized",
            random_state=random_state,
        ),
        StandardScaler(),
    )
    return pipeline.fit(images)
