"""Images in and out: uploads decoded by us, so a bad one gets a clear message; views
written as JPEG (or PNG) files that gradio serves as they are."""

import itertools
import os
import shutil
import time
import uuid
import warnings
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageOps

from . import settings
from .errors import BadImage, UserError

Image.MAX_IMAGE_PIXELS = settings.MAX_PIXELS


def image_input(**kwargs) -> gr.Image:
    """A gr.Image that hands its handler the uploaded file unopened, so that read_image can say what
    is wrong with a bad file (gr.Image would open it with Pillow first and fail with a generic
    error). Patched on the instance, as a subclass would make gradio write a stub file beside
    this one; so no handler may return a gr.update for it: gradio answers an update by rebuilding
    a plain gr.Image for the session, which the next upload then goes through (pages.in_page)."""
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    default = image.preprocess

    def preprocess(payload):
        if payload is None or (payload.url or "").startswith("data:") or payload.path is None:
            return default(payload)
        return str(payload.path)

    image.preprocess = preprocess
    return image


def read_image(path) -> np.ndarray:
    """An uploaded image file as HxWx3 uint8 RGB (first frame, EXIF orientation applied,
    transparency over white, 16-bit scaled to 8). Raises BadImage for anything that is not a
    reasonable image, naming what is wrong."""
    if os.path.getsize(path) == 0:
        raise BadImage("The file is empty (0 bytes): the upload may have failed. Upload it again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves, just below
            im = Image.open(path)
        with im:
            if im.format not in settings.IMAGE_FORMATS:
                raise BadImage(f"{im.format} images are not supported: use PNG, JPEG, WebP, GIF, BMP or TIFF.")
            w, h = im.size
            if w * h > settings.MAX_PIXELS:
                raise BadImage(
                    f"The image is {w}×{h} px ({w * h / 1e6:.0f} MP); the limit is {settings.MAX_PIXELS / 1e6:.0f} MP."
                )
            im = ImageOps.exif_transpose(im)
            # 16-bit or float grey: convert("RGB") would clip it to white
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                im = Image.fromarray(eight_bit(np.asarray(im)))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            array = np.asarray(im.convert("RGB"))
    except BadImage:
        raise
    except (OSError, EOFError) as e:
        if "truncated" in str(e).lower() or isinstance(e, EOFError):
            raise BadImage(
                "The image file is truncated (an incomplete upload or download?): upload the whole file."
            ) from e
        raise BadImage(
            f"This file is not a readable image ({type(e).__name__}). Upload a PNG, JPEG, WebP, GIF, BMP or TIFF."
        ) from e
    except Image.DecompressionBombError as e:  # Pillow's own check, at twice settings.MAX_PIXELS
        raise BadImage(f"The image is too large: the limit is {settings.MAX_PIXELS / 1e6:.0f} MP.") from e
    except Exception as e:  # decoders of untrusted files raise all kinds of exceptions; each means "not an image"
        raise BadImage(
            f"This file is not a readable image ({type(e).__name__}). Upload a PNG, JPEG, WebP, GIF, BMP or TIFF."
        ) from e
    if min(array.shape[:2]) < settings.MIN_SIDE:
        raise BadImage(
            f"The image is {array.shape[1]}×{array.shape[0]} px: at least {settings.MIN_SIDE} px on each side, please."
        )
    return array


def frame_count(path) -> int:
    """How many frames an image file holds (an animated GIF, WebP or PNG: read_image takes the first)."""
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except Exception:  # read_image has already said what is wrong with a bad file
        return 1


def eight_bit(values: np.ndarray) -> np.ndarray:
    """A grey picture of wider values (16-bit, 32-bit or float) as uint8: 16-bit ranges are divided
    by 257, floats in [0, 1] scaled by 255; anything else is stretched to its own range."""
    values = values.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if values.min() >= 0 and top <= 1 and values.dtype.kind == "f":
        values = values * 255
    elif values.min() >= 0 and 255 < top <= 65535:
        values = values / 257
    elif values.min() < 0 or top > 65535:
        values = (values - values.min()) / max(float(np.ptp(values)), 1e-12) * 255
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def fit_working_size(image: np.ndarray, size: int) -> tuple[np.ndarray, str]:
    """Scale the image down so its long side is at most `size` (never up); says what it did."""
    h, w = image.shape[:2]
    if max(h, w) <= size:
        return image, f"{w}×{h} px, used as is"
    scale = size / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    if min(nw, nh) < settings.MIN_SIDE:
        raise UserError(f"At {size} px the {w}×{h} image would be {nw}×{nh}: too thin. Choose a larger working size.")
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.LANCZOS))
    return resized, f"scaled down from {w}×{h} to {nw}×{nh} px (working size {size} px)"


PRUNE_EVERY = 100  # views written between two prunings of the views folder (settings.MAX_VIEW_FILES)
_views_written = itertools.count()  # by this process; next() on it is atomic, so threads never skip a pruning


def display_scale(shape: tuple) -> int:
    """The whole factor a view of this (H, W, ...) shape is enlarged by: small images (a 20 px icon)
    would otherwise be shown at their own few pixels."""
    return max(1, settings.DISPLAY_SIDE // max(shape[0], shape[1]))


def picture_xy(index, shape: tuple) -> tuple[int, int]:
    """A click on a shown view (gradio's evt.index, in the shown picture's pixels) as (x, y) in the
    image's own pixels, inside it."""
    s = display_scale(shape)
    x, y = (int(v) // s for v in index)
    return min(max(x, 0), shape[1] - 1), min(max(y, 0), shape[0] - 1)


def view_file(picture: np.ndarray | None, enlarge: bool = True, exact: bool = False) -> str | None:
    """Write a view in gradio's cache folder and return its path, which gradio then serves as it
    is. A view is a JPEG (settings.VIEW_QUALITY) unless `exact` (text to read, an image to encode
    again) or settings.LOSSY_VIEWS is off: at 512 px a JPEG takes 0.8 ms to write and 49 kB to send,
    a PNG 19 ms and 336 kB (zlib level 1; gradio's own level 6 is four times slower still), and the
    slider shows five views a step. A small view is enlarged (display_scale) unless enlarge is False."""
    if picture is None:
        return None
    folder = Path(gr.utils.get_upload_folder()) / "vle-explorer-views"
    folder.mkdir(parents=True, exist_ok=True)
    if next(_views_written) % PRUNE_EVERY == 0:
        remove_old_files(folder, age_s=2 * 3600, keep=settings.MAX_VIEW_FILES)
    s = display_scale(picture.shape) if enlarge else 1
    if s > 1:
        picture = np.repeat(np.repeat(picture, s, axis=0), s, axis=1)
    if settings.LOSSY_VIEWS and not exact:
        path = folder / f"{uuid.uuid4().hex}.jpg"
        # 4:4:4: token colours kept apart
        Image.fromarray(picture).save(path, quality=settings.VIEW_QUALITY, subsampling=0)
    else:
        path = folder / f"{uuid.uuid4().hex}.png"
        Image.fromarray(picture).save(path, compress_level=1)
    return str(path)


def remove_old_files(folder: Path, age_s: float, keep: int | None = None) -> None:
    """Delete what is older than age_s in folder, and past the `keep` newest: views and exports are
    needed only for a while, and a busy server must not fill its disk with them."""
    entries = []
    for path in folder.iterdir():
        try:
            entries.append((path.stat().st_mtime, path))
        except OSError:  # removed meanwhile by another thread
            pass
    entries.sort(reverse=True)
    now = time.time()
    for i, (mtime, old) in enumerate(entries):
        if now - mtime > age_s or (keep is not None and i >= keep):
            try:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            except OSError:
                pass
