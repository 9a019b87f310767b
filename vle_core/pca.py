"""The best linear code of 8x8 RGB patches: PCA, 4 components per token (a token holds 4 values
per 8x8 patch). It is the evaluation's baseline, and a staged VLE's starting point (`stages` in
config.py): initialised with it, a staged VLE starts out as this code and trains from there.
"""

import numpy as np

from . import metrics

PATCH = 8
VALUES_PER_TOKEN = 4  # latent channels: 4 numbers per 8x8 patch per token


def patches(image: np.ndarray) -> np.ndarray:
    """HxWx3 -> (N, 192) non-overlapping 8x8 RGB patches (the image cropped to multiples of 8),
    each flattened in (y, x, channel) order."""
    H, W = (s - s % PATCH for s in image.shape[:2])
    blocks = image[:H, :W].reshape(H // PATCH, PATCH, W // PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(-1, PATCH * PATCH * 3)


def unpatch(rows: np.ndarray, H: int, W: int) -> np.ndarray:
    """The inverse of `patches`: (N, 192) rows of an image H x W (multiples of 8) -> HxWx3."""
    return rows.reshape(H // PATCH, W // PATCH, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4).reshape(H, W, 3)


class PatchPCA:
    """The best linear code of 8x8 RGB patches (in mean squared error), fitted on training images."""

    def __init__(self, training_images):
        data = np.concatenate([patches(im) for im in training_images]).astype(np.float64)
        self.mean = data.mean(0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(data - self.mean, rowvar=False))
        self.components = eigenvectors[:, ::-1]  # (192, 192), strongest first

    def reconstruct(self, image: np.ndarray, n_components: int) -> np.ndarray:
        H, W = (s - s % PATCH for s in image.shape[:2])
        basis = self.components[:, :n_components]
        codes = (patches(image) - self.mean) @ basis
        return np.clip(unpatch(codes @ basis.T + self.mean, H, W), 0, 1)

    def psnr_curve(self, images, n_tokens: int) -> list[float]:
        """Mean PSNR over the images with 4k components, for k = 1..n_tokens."""
        curve = []
        for k in range(1, n_tokens + 1):
            scores = []
            for image in images:
                reconstruction = self.reconstruct(image, VALUES_PER_TOKEN * k)
                scores.append(metrics.psnr(image[: reconstruction.shape[0], : reconstruction.shape[1]], reconstruction))
            curve.append(float(np.mean(scores)))
        return curve

    def unshuffled_components(self) -> np.ndarray:
        """The components with rows in PixelUnshuffle's (channel, y, x) order, the order a
        [3, 8, 8] patch has as one cell of F.pixel_unshuffle(image, 8): (192, 192), strongest first."""
        return self.components.reshape(PATCH, PATCH, 3, -1).transpose(2, 0, 1, 3).reshape(PATCH * PATCH * 3, -1)
