"""Tokens, and what they decode to.

A token is a latent map together with the statistics that de-normalise its decoded output:
the residual it encoded was normalised per image and channel before encoding, so the latent
alone does not say how strong or how coloured its addition is (as in the authors' code).
It also records its stage, the step of the residual loop that made it: a staged VLE decodes
token n with stage n's code, wherever edits move it in a sequence.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import DOWNSAMPLING

MAX_SIDE = 16384  # px: a tokens file for a larger image is refused before anything is decoded
MAX_FILE_TOKENS = 1024  # tokens in one file: edits append (transplants), encodes stop at vle.MAX_TOKENS
# latents, mean, std in a file: an encode gives a few tens at most, an app edit (strength <= 10) ten times that
MAX_VALUE = 1e4


def latent_grid(image_size: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) latent cells that cover an image of (H, W) pixels: sides padded up to multiples of 8."""
    return tuple(-(-side // DOWNSAMPLING) for side in image_size)


@dataclass(frozen=True)
class Tokens:
    """n tokens that rebuild one image of `image_size` = (H, W) pixels.

    latents: [n, C, ceil(H/8), ceil(W/8)] float32
    mean, std: [n, 3] float32, each token's residual statistics in [-1, 1] pixel units
    stage: [n] int64, the loop step (1-based) that made each token; by default 1..n
    """

    latents: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    image_size: tuple[int, int]
    stage: torch.Tensor | None = None

    def __post_init__(self):
        n = self.latents.shape[0]
        if self.latents.ndim != 4 or self.mean.shape != (n, 3) or self.std.shape != (n, 3):
            raise ValueError(
                f"inconsistent token shapes: latents {tuple(self.latents.shape)}, mean {tuple(self.mean.shape)}, std "
                f"{tuple(self.std.shape)}"
            )
        stage = torch.arange(1, n + 1) if self.stage is None else torch.as_tensor(self.stage).long()
        if stage.shape != (n,) or (n and int(stage.min()) < 1):
            raise ValueError(f"token stages must be {n} steps of 1 or more, got {stage.tolist()}")
        object.__setattr__(self, "stage", stage)
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))

    def __len__(self) -> int:
        return self.latents.shape[0]

    def __repr__(self) -> str:
        """A line, not the tensors: how many tokens, their latent shape, the image and the stages."""
        stages = self.stage.tolist()
        if stages == list(range(1, len(self) + 1)):
            stage = f"1..{len(self)}" if len(self) > 1 else str(stages[0]) if stages else "none"
        else:
            stage = str(stages) if len(stages) <= 8 else f"[{', '.join(map(str, stages[:8]))}, ...]"
        H, W = self.image_size
        return f"Tokens({len(self)} x {tuple(self.latents.shape[1:])} latents, for a {H}x{W} image, stages {stage})"

    def __getitem__(self, index) -> "Tokens":
        """A sub-sequence: an int, a slice or a list of indices (in that order)."""
        if isinstance(index, int):
            index = [index]
        elif not isinstance(index, slice):
            index = list(index)
        return Tokens(self.latents[index], self.mean[index], self.std[index], self.image_size, self.stage[index])

    def save(self, path, metadata: dict[str, str] | None = None) -> None:
        """Write the tokens as a safetensors file (no pickling); `Tokens.load` reads it back.
        `metadata` (strings) travels with them, e.g. which checkpoint made them."""
        tensors = {
            "latents": self.latents.contiguous(),
            "mean": self.mean.contiguous(),
            "std": self.std.contiguous(),
            "stage": self.stage.contiguous(),
        }
        save_file(
            tensors,
            str(path),
            metadata={
                **(metadata or {}),
                "format": "vle-tokens/1",
                "height": str(self.image_size[0]),
                "width": str(self.image_size[1]),
            },
        )

    @staticmethod
    def metadata(path) -> dict[str, str]:
        """The string metadata saved with a tokens file."""
        try:
            with safe_open(str(path), framework="pt") as f:
                return dict(f.metadata() or {})
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{Path(path).name} is not a VLE tokens file: {e}") from e

    @classmethod
    def load(cls, path) -> "Tokens":
        """Read a file `save` wrote. Anything else, or a tampered file (wrong shapes for its image
        size, non-finite or absurdly large values, an absurd size or count), is a ValueError that names the problem;
        nothing is ever unpickled."""
        path = Path(path)
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            size = (int(meta["height"]), int(meta["width"]))
            if not (0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE):
                raise ValueError(f"an image size of {size[0]}x{size[1]} px is outside 1..{MAX_SIDE}")
            latents, mean, std = (tensors[name] for name in ("latents", "mean", "std"))
            if latents.ndim != 4 or tuple(latents.shape[2:]) != latent_grid(size) or len(latents) > MAX_FILE_TOKENS:
                raise ValueError(
                    f"latents of shape {tuple(latents.shape)} do not fit a {size[0]}x{size[1]} image (at most "
                    f"{MAX_FILE_TOKENS} tokens)"
                )
            if not all(t.is_floating_point() and bool(torch.isfinite(t).all()) for t in (latents, mean, std)):
                raise ValueError("latents, mean and std must be finite floats")
            largest = max((float(t.abs().max()) for t in (latents, mean, std) if t.numel()), default=0.0)
            if largest > MAX_VALUE:  # decoded, 1e30 overflows to inf, then NaN pixels
                raise ValueError(
                    f"latents, mean and std must lie within +-{MAX_VALUE:g}; this file holds larger values"
                )
            stage = tensors.get("stage")  # files before stages: 1..n
            if stage is not None and (stage.is_floating_point() or stage.is_complex() or stage.dtype == torch.bool):
                raise ValueError(f"token stages must be integers, got {stage.dtype}")
            return cls(latents.float(), mean.float(), std.float(), size, stage)
        except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as e:
            raise ValueError(f"{path.name} is not a VLE tokens file: {e}") from e

    @staticmethod
    def empty(latent_channels: int, image_size: tuple[int, int]) -> "Tokens":
        return Tokens(
            torch.zeros(0, latent_channels, *latent_grid(image_size)), torch.zeros(0, 3), torch.zeros(0, 3), image_size
        )

    @staticmethod
    def cat(sequences: list["Tokens"]) -> "Tokens":
        """One sequence of the given ones, in order; all must rebuild the same image size."""
        sizes = {t.image_size for t in sequences}
        if len(sizes) != 1:
            raise ValueError(f"cannot join tokens for different image sizes: {sorted(sizes)}")
        return Tokens(
            torch.cat([t.latents for t in sequences]),
            torch.cat([t.mean for t in sequences]),
            torch.cat([t.std for t in sequences]),
            sizes.pop(),
            torch.cat([t.stage for t in sequences]),
        )


EMPTY = 0.5  # the reconstruction before any token: X^_0 = 0 in [-1, 1] pixels is mid-grey


@dataclass(frozen=True)
class Rendering:
    """What a token sequence decodes to; arrays are numpy, in [0, 1] pixel units.

    contributions: (n, H, W, 3) float32, each token's addition (may be negative)
    reconstructions: (n, H, W, 3) float32 in [0, 1]; index k-1 is the image rebuilt from the
        first k tokens: clip(EMPTY + contributions[:k].sum(0), 0, 1)
    masks: (n, H, W) float32 in [0, 1], or None for a model without masks
    """

    tokens: Tokens
    contributions: np.ndarray
    reconstructions: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        """A line, not the arrays."""
        H, W = self.tokens.image_size
        masks = "with" if self.masks is not None else "no"
        return f"{type(self).__name__}({len(self)} tokens of a {H}x{W} image, {masks} masks{self._more()})"

    def _more(self) -> str:
        return ""


@dataclass(frozen=True, repr=False)  # Rendering's one-line repr, not the arrays
class Encoding(Rendering):
    """A Rendering of the tokens an image was encoded into, with that image: (H, W, 3) float32 in [0, 1].

    target: for an encode to a quality target, the target ({"psnr": dB} and/or {"ssim": value}),
        else None; reached: whether its last token reached it (None for a fixed count): an
        encode that did not stopped at its max_tokens."""

    image: np.ndarray = None
    target: dict | None = None
    reached: bool | None = None

    def _more(self) -> str:
        if self.target is None:
            return ""
        wanted = " and ".join(f"{name.upper()} {value:g}" for name, value in self.target.items())
        return f", {wanted} {'reached' if self.reached else 'not reached'}"
