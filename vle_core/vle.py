"""The public face of a trained model: images in, tokens out, tokens back to images.

`VLE` wraps a VanillaVLE or MaskedVLE module with the conversions between user images
(PIL or HxWx3 uint8 arrays, [0, 1] pixels) and the model's [-1, 1] tensors. Every encode goes
through `loop.residual_loop`; every decode through `loop.decode_tokens`.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import edit, metrics
from .config import VLEConfig
from .loop import decode_tokens, from_pixels, residual_loop
from .masked import MaskedVLE
from .tokens import EMPTY, Encoding, Rendering, Tokens, latent_grid
from .vanilla import VanillaVLE


def build_model(config: VLEConfig):
    """A freshly initialised VanillaVLE or MaskedVLE for `config`."""
    return MaskedVLE(config) if config.kind == "masked" else VanillaVLE(config)


def pick_device(device: str = "auto") -> torch.device:
    """ "auto" picks cuda, then mps, then cpu."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def image_to_array(image) -> np.ndarray:
    """An image file's path, a PIL image, or an HxWx3 array (uint8, or float in [0, 1]), as HxWx3
    float32 in [0, 1]."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a PIL image or an HxWx3 array, got {getattr(image, 'shape', type(image).__name__)}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"the image is empty: {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if np.issubdtype(image.dtype, np.floating) and np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1:
        return image.astype(np.float32)
    raise ValueError(f"expected uint8 pixels or floats in [0, 1], got {image.dtype} in [{image.min()}, {image.max()}]")


MAX_TOKENS = 64  # per encode: 64 tokens of a 768 px image already hold ~1 GB of views; 1000 ran for minutes past 1.3 GB
MAX_TOKENS_UNTIL = 32  # the default cap of an encode to a target quality


def _token_count(n_tokens, name: str = "n_tokens") -> int:
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or not 1 <= n_tokens <= MAX_TOKENS:
        raise ValueError(
            f"{name} must be a whole number between 1 and {MAX_TOKENS} (vle_core.vle.MAX_TOKENS), got {n_tokens!r}"
        )
    return int(n_tokens)


def _targets(n_tokens, target_psnr, target_ssim, max_tokens) -> dict:
    """The quality targets of an encode ({} for a fixed count), checked: a count or a target, not both."""
    targets = {
        name: value for name, value in (("target_psnr", target_psnr), ("target_ssim", target_ssim)) if value is not None
    }
    if (n_tokens is None) == (not targets):
        raise ValueError(
            "give either n_tokens or a quality target (target_psnr=..., target_ssim=...), not both or neither"
        )
    for name, value in targets.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if "target_psnr" in targets and not targets["target_psnr"] > 0:
        raise ValueError(f"target_psnr is in dB and above 0, got {target_psnr}")
    if "target_ssim" in targets and not 0 < targets["target_ssim"] <= 1:
        raise ValueError(f"target_ssim is between 0 and 1 (1: identical images), got {target_ssim}")
    if targets:
        _token_count(max_tokens, "max_tokens")
    return {name: float(value) for name, value in targets.items()}


def _reaches(
    image: np.ndarray, reconstruction: np.ndarray, target_psnr: float | None = None, target_ssim: float | None = None
) -> bool:
    return (target_psnr is None or metrics.psnr(image, reconstruction) >= target_psnr) and (
        target_ssim is None or metrics.ssim(image, reconstruction) >= target_ssim
    )


class VLE:
    """A trained VLE. `vle_core.load_vle(folder)` makes one from a checkpoint."""

    def __init__(self, model, device="auto", card: str = "", training: dict | None = None):
        self.device = pick_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.config: VLEConfig = model.config
        self.card = card  # the model card (README.md of the checkpoint)
        self.training = dict(training or {})  # what it was trained on and how, from config.json

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def trained_tokens(self) -> int | None:
        """The most tokens per image it saw in training; more still work, but are extrapolation."""
        return self.training.get("max_tokens")

    def _to_tensor(self, array: np.ndarray):
        return from_pixels(array, self.device)

    def encode(
        self,
        image,
        n_tokens: int | None = None,
        *,
        target_psnr: float | None = None,
        target_ssim: float | None = None,
        max_tokens: int = MAX_TOKENS_UNTIL,
        on_token=None,
    ) -> Encoding:
        """Encode an image (a path, a PIL image or an HxWx3 array) into tokens: n_tokens of them,
        any number (also past the trained count), or as many as this image needs.

        With target_psnr (dB) and/or target_ssim, the loop stops at the first token count whose
        reconstruction reaches every target, or at max_tokens; `Encoding.reached` says which. The
        loop already rebuilds the image after each token, so stopping costs no extra decode, and
        the tokens are the first k of any longer encoding of the same image.
        on_token: None, or a function called with (k, most) after token k: a progress bar's."""
        targets = _targets(n_tokens, target_psnr, target_ssim, max_tokens)
        array = image_to_array(image)
        if not targets:
            return self._encode(array, _token_count(n_tokens), on_token=on_token)
        encoding = self._encode(
            array, max_tokens, stop=lambda reconstruction: _reaches(array, reconstruction, **targets), on_token=on_token
        )
        reached = _reaches(array, encoding.reconstructions[-1], **targets)
        return replace(
            encoding, target={key.removeprefix("target_"): value for key, value in targets.items()}, reached=reached
        )

    @torch.inference_mode()
    def _encode(self, array: np.ndarray, n_tokens: int, stop=None, on_token=None) -> Encoding:
        """The residual loop on an HxWx3 [0, 1] array; stop(reconstruction HxWx3 in [0, 1]) ends it
        early; on_token(k, n_tokens) follows it."""
        done = []

        def after_token(shown) -> bool:
            done.append(True)
            if on_token is not None:
                on_token(len(done), n_tokens)
            return stop is not None and stop(_hwc((shown + 1).clamp(0, 2) / 2)[0])

        out = residual_loop(self.model, self._to_tensor(array), n_tokens, after_token if stop or on_token else None)
        tokens = Tokens(
            torch.cat(out.latents).float().cpu(),
            torch.cat(out.mean).float().cpu(),
            torch.cat(out.std).float().cpu(),
            array.shape[:2],
            torch.cat(out.stages).cpu(),
        )
        masks = None if out.masks is None else torch.cat(out.masks)
        rendering = self._rendering(tokens, torch.cat(out.contributions), masks)
        return Encoding(
            rendering.tokens, rendering.contributions, rendering.reconstructions, rendering.masks, image=array
        )

    @torch.inference_mode()
    def render(self, tokens: Tokens) -> Rendering:
        """Decode each token of a (possibly edited) sequence: contributions, reconstructions, masks."""
        self._check(tokens)
        if len(tokens) == 0:
            H, W = tokens.image_size
            empty = np.zeros((0, H, W, 3), np.float32)
            return Rendering(
                tokens, empty, empty.copy(), None if self.kind == "vanilla" else np.zeros((0, H, W), np.float32)
            )
        d = self.device
        contributions, masks = decode_tokens(
            self.model, tokens.latents.to(d), tokens.mean.to(d), tokens.std.to(d), tokens.stage.to(d), tokens.image_size
        )
        return self._rendering(tokens, contributions, masks)

    def decode(self, tokens: Tokens) -> np.ndarray:
        """The image rebuilt from all of `tokens`, edited or not: HxWx3 float32 in [0, 1]."""
        rendering = self.render(tokens)
        if len(tokens) == 0:
            return np.full((*tokens.image_size, 3), EMPTY, np.float32)
        return rendering.reconstructions[-1]

    def region_tokens(self, tokens: Tokens) -> np.ndarray:
        """[n] bool: which tokens are objects, a masked VLE's tokens coded after its whole-image ones."""
        if self.kind != "masked":
            return np.zeros(len(tokens), bool)
        return tokens.stage.numpy() > self.config.whole_tokens

    def apply_edits(self, rendering: Rendering, off=(), moves: dict | None = None) -> np.ndarray:
        """The picture with tokens `off` switched off and tokens in `moves` moved by (dx, dy)
        pixels (0-based indices; right and down positive): HxWx3 float32 in [0, 1].
        rendering: an Encoding, or the Rendering of any (edited) token sequence (`render`).

        A masked VLE's region token is an object (`edit.layered`): switched off or moved, it takes
        the picture under its mask with it and leaves a smooth continuation of the surroundings;
        moved, it is painted where it lands (by whole pixels). Every other token, a vanilla VLE's or
        a masked VLE's whole-image token, is an addition: switched off, it is left out of the sum;
        moved, its latent moves (`edit.translate`) and it alone is decoded again."""
        tokens, (H, W) = rendering.tokens, rendering.tokens.image_size
        off = set(edit.token_indices(tokens, list(off)))
        moves = moves or {}
        offsets = [_offset(d, (H, W)) for d in moves.values()]
        moves = {i: d for i, d in zip(edit.token_indices(tokens, list(moves)), offsets) if d != (0.0, 0.0)}
        regions = self.region_tokens(tokens)
        on = [i not in off for i in range(len(tokens))]
        moved = [i for i in moves if on[i] and not regions[i]]
        kept = [i for i in range(len(tokens)) if regions[i] or (on[i] and i not in moved)]
        picture = EMPTY + rendering.contributions[kept].sum(0) if kept else np.full((H, W, 3), EMPTY, np.float32)
        if moved:
            # a masked token's vacated cells hold its background, not a seam
            vacated = "background" if self.kind == "masked" else "zeros"
            shifted = Tokens.cat([edit.translate(tokens[[i]], 0, *moves[i], vacated=vacated) for i in moved])
            picture = picture + self.render(shifted).contributions.sum(0)
        picture = np.clip(picture, 0, 1).astype(np.float32)
        if not regions.any():
            return picture
        r = np.flatnonzero(regions)
        return edit.layered(
            picture,
            rendering.masks[r],
            rendering.contributions[r],
            [on[i] for i in r],
            [moves.get(i, (0.0, 0.0)) for i in r],
        )

    def tokens_needed(self, image, max_tokens: int, mse: float | None = None, ssim: float | None = None) -> int | None:
        """The fewest tokens whose reconstruction reaches every given target (MSE at most `mse`,
        SSIM at least `ssim`, on [0, 1] pixels): the variable length of this image (footnote 1).
        None if max_tokens tokens do not reach it."""
        if mse is None and ssim is None:
            raise ValueError("give a target: mse=..., ssim=... or both")
        array = image_to_array(image)

        def reaches(reconstruction) -> bool:
            return (mse is None or metrics.mse(array, reconstruction) <= mse) and (
                ssim is None or metrics.ssim(array, reconstruction) >= ssim
            )

        encoding = self._encode(array, _token_count(max_tokens, "max_tokens"), stop=reaches)
        return len(encoding) if reaches(encoding.reconstructions[-1]) else None

    def _check(self, tokens: Tokens):
        C = self.config.latent_channels
        grid = latent_grid(tokens.image_size)
        if tokens.latents.shape[1] != C or tuple(tokens.latents.shape[2:]) != grid:
            raise ValueError(
                f"these tokens ({tuple(tokens.latents.shape[1:])} latents for a {tokens.image_size} image) do not fit "
                f"this model ({C} latent channels, a {grid} grid)"
            )

    def _rendering(self, tokens, contributions, masks) -> Rendering:
        """[n, 3, H, W] contributions in [-1, 1] units -> numpy in [0, 1] units, with the
        cumulative reconstructions summed in float32 exactly as the loop sums them."""
        contributions = contributions.float()
        reconstructions = (torch.cumsum(contributions, dim=0) + 1) / 2
        return Rendering(
            tokens,
            _hwc(contributions / 2),
            _hwc(reconstructions.clamp(0, 1)),
            None if masks is None else masks[:, 0].float().cpu().numpy(),
        )


def _offset(move, image_size: tuple[int, int]) -> tuple[float, float]:
    """A move (dx, dy) as floats, refused if not finite or past the image (it would show nothing)."""
    try:
        dx, dy = (float(v) for v in move)
    except (TypeError, ValueError):
        raise ValueError(f"a move is a pair (dx, dy) of pixels, got {move!r}") from None
    H, W = image_size
    if not (np.isfinite(dx) and np.isfinite(dy) and abs(dx) <= W and abs(dy) <= H):
        raise ValueError(f"a move of ({dx:+g}, {dy:+g}) px leaves the {W}x{H} image")
    return dx, dy


def _hwc(images) -> np.ndarray:
    """[n, 3, H, W] tensor -> (n, H, W, 3) numpy."""
    return images.permute(0, 2, 3, 1).cpu().numpy()
