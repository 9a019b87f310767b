"""VLE Explorer: look inside Variable Length Embeddings (Chiu, Gu and Zhou, 2023).

Choose an image and a checkpoint; step through the tokens the image was encoded into and see
each one's contribution and mask; follow the quality curve; switch, scale, move and transplant
tokens; export; compare two checkpoints. `python app.py` serves it on the default checkpoint,
and the same folder runs unchanged as a Hugging Face Space. This file is UI only: every
encode and decode goes through vle_core.

Settings (environment variables): VLE_CHECKPOINTS (folder of checkpoint folders, default
./checkpoints), VLE_DEFAULT_CHECKPOINT (default vanilla-natural, else the first folder),
VLE_CACHE_DIR (the encodings cache, default ./.cache/encodings), VLE_CACHE_MB (its bound).
"""

import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a 2-core machine shared
# with other work (a training run, other users), spinning threads made an encode 7x slower
# (7.2 s instead of 0.9 s for 8 tokens at 256 px); alone on the machine it costs nothing noticeable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import diskcache
import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

import vle_core
from vle_core import EMPTY, Tokens, edit, metrics
from vle_core.tokens import latent_grid

try:  # on ZeroGPU hardware, model calls borrow a GPU; elsewhere the decorator does nothing
    import spaces

    GPU = spaces.GPU
except ImportError:

    def GPU(fn):
        return fn


ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
CHECKPOINTS = Path(os.environ.get("VLE_CHECKPOINTS", ROOT / "checkpoints"))
DEFAULT_CHECKPOINT = os.environ.get("VLE_DEFAULT_CHECKPOINT", "vanilla-natural")
CACHE_DIR = Path(os.environ.get("VLE_CACHE_DIR", ROOT / ".cache" / "encodings"))
CACHE_MB = int(os.environ.get("VLE_CACHE_MB", "2048"))  # bound of the on-disk encodings cache
EXPORTS = Path(tempfile.gettempdir()) / "vle-explorer-exports"
DEVICE = vle_core.pick_device("auto")  # cuda, then mps, then cpu

N_TOKENS = 16  # tokens encoded per image unless the user asks for more or fewer
N_TOKENS_MAX = 32
MAX_EDITED_TOKENS = 64  # transplants append tokens; this bounds what one edit can cost
WORKING_SIZE = 256  # long side, px: larger images are scaled down to it (the user picks 128..768)
WORKING_SIZE_RANGE = (128, 768)
MIN_SIDE = 8  # px; one latent cell
MAX_PIXELS = 40_000_000  # refused before decoding; Pillow's own bomb limit (~179 MP) is far above what we need
MAX_FILE_SIZE = "25mb"
IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"}  # MPO: JPEGs from some phones
MEMORY_MB = 512  # decoded entries kept in RAM in front of the disk cache
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

TARGETS = {"PSNR": 25.0, "MSE": 0.00075, "SSIM": 0.8}  # MSE 0.00075 on [0, 1] pixels is the paper's 0.003 on [-1, 1] (Fig. 2)
PALETTE = np.array(  # one colour per token in overlays and strips (cycled past 20)
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
        (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
    ],
    np.float32,
)  # fmt: skip
NEGATIVE, POSITIVE = np.array([0.23, 0.30, 0.75], np.float32), np.array([0.71, 0.02, 0.15], np.float32)  # heatmap ends
PAST_TRAINING = "#d9480f"  # marks token counts beyond what the checkpoint was trained with


# ---------------------------------------------------------------------------------------------
# Checkpoints: every folder in CHECKPOINTS, each loaded once on first use and kept.


def checkpoint_names() -> list[str]:
    """All checkpoint folders, broken ones too: choosing one then says why it does not load."""
    if not CHECKPOINTS.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS.iterdir() if p.is_dir() and not p.name.startswith("."))


def default_checkpoint() -> str | None:
    names = checkpoint_names()
    if DEFAULT_CHECKPOINT in names:
        return DEFAULT_CHECKPOINT
    return names[0] if names else None


def _card_title(card: str) -> str:
    """The model card's first heading, or its first line of text (after any YAML front matter)."""
    lines = card.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[end + 1 :]
    text = [line.strip() for line in lines if line.strip()]
    heading = next((line for line in text if line.startswith("#")), text[0] if text else "")
    return heading.lstrip("#").strip()


def checkpoint_summary(name: str) -> str:
    """One line for the menu, read without loading weights: kind, data, tokens trained, title."""
    folder = CHECKPOINTS / name
    try:
        meta = json.loads((folder / "config.json").read_text())
        kind, training = meta["kind"], meta.get("training") or {}
        kind = f"staged {kind}" if (meta.get("config") or {}).get("stages") else kind
        title = _card_title((folder / "README.md").read_text()) if (folder / "README.md").is_file() else ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{name} (unreadable: {type(e).__name__})"
    parts = [str(kind), str(training.get("data", "data unknown"))]
    if training.get("max_tokens"):
        parts.append(f"trained with ≤{training['max_tokens']} tokens")
    title = title if len(title) <= 60 else title[:59] + "…"
    return f"{name}: " + ", ".join(parts) + (f" ({title})" if title else "")


def checkpoint_choices() -> list[tuple[str, str]]:
    return [(checkpoint_summary(name), name) for name in checkpoint_names()]


_models: dict[str, tuple[str, vle_core.VLE]] = {}  # name -> (model id, model)
_models_lock = threading.Lock()


def get_model(name: str | None) -> tuple[str, vle_core.VLE]:
    """(model id, VLE) for a checkpoint folder name. The id changes when the folder's files do,
    so a checkpoint retrained in place is reloaded and never served from stale cache entries."""
    if not name:
        raise gr.Error(f"No checkpoint chosen: there is none in {CHECKPOINTS}." if not checkpoint_names() else "Choose a checkpoint first.")
    if name not in checkpoint_names():  # also keeps names like "../x" out of the file system
        raise gr.Error(f"There is no checkpoint called {name!r} in {CHECKPOINTS}.")
    folder = CHECKPOINTS / name
    try:
        stats = [(folder / f).stat() for f in ("config.json", "model.safetensors")]
    except OSError as e:
        raise gr.Error(f"Checkpoint {name} cannot be loaded: {e.strerror}: {Path(e.filename).name}") from e
    model_id = f"{name}@" + hashlib.sha1(repr([(s.st_mtime_ns, s.st_size) for s in stats]).encode()).hexdigest()[:12]
    with _models_lock:
        if name in _models and _models[name][0] == model_id:
            return _models[name]
        try:
            vle = vle_core.load_vle(folder, device=DEVICE)
        except ValueError as e:
            raise gr.Error(f"Checkpoint {name} cannot be loaded: {e}") from e
        _models[name] = (model_id, vle)
        return _models[name]


@GPU
def _encode(vle: vle_core.VLE, image: np.ndarray, n: int) -> vle_core.Encoding:
    return vle.encode(image, n)


@GPU
def _render(vle: vle_core.VLE, tokens: Tokens) -> vle_core.Rendering:
    return vle.render(tokens)


# ---------------------------------------------------------------------------------------------
# Images: decoded by us from the uploaded file, so a bad one gets a clear message.


def image_input(**kwargs) -> gr.Image:
    """A gr.Image that hands its handler the uploaded file unopened, so that read_image can say what
    is wrong with a bad file (gr.Image would open it with Pillow first and fail with a generic
    error). Patched on the instance: a subclass would make gradio write an app.pyi stub file."""
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
    transparency over white). Raises gr.Error for anything that is not a reasonable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves, just below
            im = Image.open(path)
        with im:
            if im.format not in IMAGE_FORMATS:
                raise gr.Error(f"{im.format} images are not supported: use PNG, JPEG, WebP, GIF, BMP or TIFF.")
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise gr.Error(f"The image is {w}×{h} px ({w * h / 1e6:.0f} MP); the limit is {MAX_PIXELS / 1e6:.0f} MP.")
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            array = np.asarray(im.convert("RGB"))
    except gr.Error:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own check, at twice MAX_PIXELS
        raise gr.Error(f"The image is too large: the limit is {MAX_PIXELS / 1e6:.0f} MP.") from e
    except Exception as e:  # decoders of untrusted files raise all kinds of exceptions; each means "not an image"
        raise gr.Error(f"This file is not a readable image ({type(e).__name__}). Upload a PNG, JPEG, WebP, GIF, BMP or TIFF.") from e
    if min(array.shape[:2]) < MIN_SIDE:
        raise gr.Error(f"The image is {array.shape[1]}×{array.shape[0]} px: at least {MIN_SIDE} px on each side, please.")
    return array


def fit_working_size(image: np.ndarray, size: int) -> tuple[np.ndarray, str]:
    """Scale the image down so its long side is at most `size` (never up); says what it did."""
    h, w = image.shape[:2]
    if max(h, w) <= size:
        return image, f"{w}×{h} px, used as is"
    scale = size / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    if min(nw, nh) < MIN_SIDE:
        raise gr.Error(f"At {size} px the {w}×{h} image would be {nw}×{nh}: too thin. Choose a larger working size.")
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.LANCZOS))
    return resized, f"scaled down from {w}×{h} to {nw}×{nh} px (working size {size} px)"


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


_views_written = 0


def png(picture: np.ndarray | None) -> str | None:
    """Write a view as a PNG in gradio's cache folder and return its path, which gradio then serves
    as it is. Given the array, gradio would compress at zlib level 6, about four times slower than
    level 1: the difference between a slider that keeps up and one that lags."""
    global _views_written
    if picture is None:
        return None
    folder = Path(gr.utils.get_upload_folder()) / "vle-explorer-views"
    folder.mkdir(parents=True, exist_ok=True)
    _views_written += 1
    if _views_written % 500 == 1:
        remove_old_files(folder, age_s=2 * 3600)
    path = folder / f"{uuid.uuid4().hex}.png"
    Image.fromarray(picture).save(path, compress_level=1)
    return str(path)


def remove_old_files(folder: Path, age_s: float) -> None:
    """Delete what is older than age_s in folder: views and exports are needed only for a while."""
    for old in folder.iterdir():
        try:
            if time.time() - old.stat().st_mtime > age_s:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# The encodings cache: one entry per (image content, checkpoint, working size), on disk (bounded,
# plain numpy archives, never pickles) with the most recent ones also decoded in memory.


@dataclass(eq=False)
class Entry:
    """An image's tokens and what each decodes to, for one checkpoint.

    image: (H, W, 3) uint8, what was encoded (for loaded tokens: their own final image)
    contributions: (n, H, W, 3) float16, each token's signed addition in [0, 1] pixel units
    reconstructions: (n, H, W, 3) uint8, the image from the first k tokens at index k-1
    masks: (n, H, W) uint8 (255 = fully the token's) or None for a vanilla model
    mse: (n,) float64, of the float32 reconstructions against the image
    """

    image: np.ndarray
    tokens: Tokens
    contributions: np.ndarray
    reconstructions: np.ndarray
    masks: np.ndarray | None
    mse: np.ndarray
    derived: dict = field(default_factory=dict)  # views computed from the arrays, kept for reuse

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def nbytes(self) -> int:
        arrays = [self.image, self.contributions, self.reconstructions, self.tokens.latents.numpy()]
        return sum(a.nbytes for a in arrays) + (0 if self.masks is None else self.masks.nbytes)

    @classmethod
    def from_rendering(cls, rendering: vle_core.Rendering, image: np.ndarray) -> "Entry":
        target = image.astype(np.float32) / 255
        return cls(
            image=image,
            tokens=rendering.tokens,
            contributions=rendering.contributions.astype(np.float16),
            reconstructions=to_uint8(rendering.reconstructions),
            masks=None if rendering.masks is None else to_uint8(rendering.masks),
            mse=np.array([metrics.mse(target, r) for r in rendering.reconstructions]),
        )

    def head(self, n: int) -> "Entry":
        """The first n tokens (array views, no copies); kept so their derived views are too."""
        if n == len(self):
            return self
        if n not in self.derived.setdefault("heads", {}):
            masks = None if self.masks is None else self.masks[:n]
            self.derived["heads"][n] = Entry(self.image, self.tokens[:n], self.contributions[:n], self.reconstructions[:n], masks, self.mse[:n])
        return self.derived["heads"][n]

    def to_bytes(self) -> bytes:
        arrays = dict(image=self.image, contributions=self.contributions, reconstructions=self.reconstructions, mse=self.mse)
        arrays |= dict(latents=self.tokens.latents.numpy(), mean=self.tokens.mean.numpy(), std=self.tokens.std.numpy())
        if self.masks is not None:
            arrays["masks"] = self.masks
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Entry":
        """Raises ValueError unless every array is there with the right dtype and shape."""
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            a = {name: archive[name] for name in archive.files}
        try:
            image, latents = a["image"], a["latents"]
            H, W = image.shape[:2]
            n = len(latents)
            expected = {
                "image": ((H, W, 3), np.uint8),
                "contributions": ((n, H, W, 3), np.float16),
                "reconstructions": ((n, H, W, 3), np.uint8),
                "mse": ((n,), np.float64),
                "latents": ((n, latents.shape[1], *latent_grid((H, W))), np.float32),
                "mean": ((n, 3), np.float32),
                "std": ((n, 3), np.float32),
            } | ({"masks": ((n, H, W), np.uint8)} if "masks" in a else {})
        except (KeyError, ValueError, IndexError) as e:
            raise ValueError(f"malformed cache entry: {e}") from e
        for name, (shape, dtype) in expected.items():
            if name not in a:
                raise ValueError(f"cache entry has no {name}")
            if a[name].shape != shape or a[name].dtype != dtype:
                raise ValueError(f"cache entry {name} is {a[name].dtype}{a[name].shape}, expected {np.dtype(dtype)}{shape}")
        if n < 1 or not np.isfinite(a["contributions"]).all():
            raise ValueError("cache entry has no tokens or non-finite contributions")
        tokens = Tokens(torch.from_numpy(latents), torch.from_numpy(a["mean"]), torch.from_numpy(a["std"]), (H, W))
        return cls(image, tokens, a["contributions"], a["reconstructions"], a.get("masks"), a["mse"])


class LRU:
    """A small thread-safe least-recently-used map bounded by total bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes, self.items, self.lock = max_bytes, 0, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key not in self.items:
                return None
            self.items.move_to_end(key)
            return self.items[key][0]

    def put(self, key, value, nbytes: int):
        with self.lock:
            if key in self.items:
                self.bytes -= self.items.pop(key)[1]
            self.items[key], self.bytes = (value, nbytes), self.bytes + nbytes
            while self.bytes > self.max_bytes and len(self.items) > 1:
                self.bytes -= self.items.popitem(last=False)[1][1]

    def clear(self):
        with self.lock:
            self.items.clear()
            self.bytes = 0


_entries = LRU(MEMORY_MB * 2**20)  # cache key -> Entry
_decoded = LRU(128 * 2**20)  # (model id, cache key, edited token identity) -> (contribution, mask): edits decode each token once
_disk_cache: diskcache.Cache | None = None
_disk_lock = threading.Lock()
encoder_runs = 0  # how often the encoder ran in this process (the tests watch it)


def _disk() -> diskcache.Cache | None:
    """The on-disk cache, opened on first use; None (memory only) if it cannot be opened."""
    global _disk_cache
    with _disk_lock:
        if _disk_cache is None:
            try:
                _disk_cache = diskcache.Cache(str(CACHE_DIR), size_limit=CACHE_MB * 2**20)
            except Exception as e:  # unwritable folder, broken database: run without a disk cache
                gr.Warning(f"The encodings cache at {CACHE_DIR} cannot be opened ({e}); working from memory only.")
                return None
        return _disk_cache


def configure(checkpoints=None, cache_dir=None, cache_mb=None) -> None:
    """Point the app at other folders (tests, benchmark); forgets loaded models and cached views."""
    global CHECKPOINTS, CACHE_DIR, CACHE_MB, _disk_cache
    CHECKPOINTS = Path(checkpoints) if checkpoints is not None else CHECKPOINTS
    CACHE_DIR = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    CACHE_MB = cache_mb if cache_mb is not None else CACHE_MB
    with _disk_lock:
        if _disk_cache is not None:
            _disk_cache.close()
        _disk_cache = None
    _models.clear()
    _entries.clear()
    _decoded.clear()


def _disk_get(key: str, parse):
    """parse(bytes) of a disk entry; an entry that fails to read or parse is deleted, never served."""
    disk = _disk()
    if disk is None:
        return None
    try:
        data = disk.get(key)
        return None if data is None else parse(data)
    except Exception:  # corrupt file, truncated archive, wrong shapes: recompute instead
        try:
            disk.delete(key)
        except Exception:
            pass
        return None


def _disk_set(key: str, data: bytes) -> None:
    disk = _disk()
    if disk is not None:
        try:
            disk.set(key, data)
        except Exception:  # a full or read-only disk costs a recompute later, nothing else
            pass


def source_key(source: tuple, model_id: str) -> str:
    """Cache key of a source for a model: the content of the (working-size) image or tokens."""
    kind, data = source
    h = hashlib.sha256(f"{kind}|{model_id}|".encode())
    if kind == "image":
        h.update(repr(data.shape).encode())
        h.update(np.ascontiguousarray(data).tobytes())
    else:
        h.update(repr(data.image_size).encode())
        for t in (data.latents, data.mean, data.std):
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def get_entry(model_id: str, vle: vle_core.VLE, source: tuple, n: int) -> tuple[str, Entry, bool]:
    """(key, the first n tokens of `source`'s entry, whether the model just ran). The encoder runs
    only when neither memory nor disk holds at least n tokens of this source for this model.
    source: ("image", HxWx3 uint8 at working size) or ("tokens", Tokens)."""
    global encoder_runs
    key = source_key(source, model_id)
    entry = _entries.get(key)
    if entry is None or len(entry) < n:
        entry = _disk_get(f"entry/{key}", Entry.from_bytes)
        if entry is not None and entry.image.shape != _source_shape(source):
            entry = None  # a key collision cannot happen in practice; a wrong entry must still not be served
    fresh = entry is None or len(entry) < n
    if fresh:
        kind, data = source
        if kind == "image":
            encoder_runs += 1
            entry = Entry.from_rendering(_encode(vle, data, n), data)
        else:
            try:
                rendering = _render(vle, data)
            except ValueError as e:
                raise gr.Error(f"These tokens do not fit this checkpoint: {e}") from e
            entry = Entry.from_rendering(rendering, to_uint8(rendering.reconstructions[-1]))
        _disk_set(f"entry/{key}", entry.to_bytes())
    _entries.put(key, entry, entry.nbytes)
    return key, entry.head(min(n, len(entry))), fresh


def _source_shape(source: tuple) -> tuple:
    kind, data = source
    return data.shape if kind == "image" else (*data.image_size, 3)


def quality(key: str, entry: Entry) -> dict:
    """MSE, PSNR and SSIM of the first k tokens' image, k = 1..n. SSIM is slow (about 20 ms per
    256 px image), so it is computed once and kept beside the entry on disk."""
    if "ssim" not in entry.derived:
        stored = _disk_get(f"ssim/{key}", lambda data: np.load(io.BytesIO(data), allow_pickle=False))
        if stored is not None and stored.dtype == np.float64 and stored.ndim == 1 and len(stored) >= len(entry):
            entry.derived["ssim"] = stored[: len(entry)]
        else:
            entry.derived["ssim"] = np.array([metrics.ssim(entry.image, r) for r in entry.reconstructions])
            buffer = io.BytesIO()
            np.save(buffer, entry.derived["ssim"])
            _disk_set(f"ssim/{key}", buffer.getvalue())
    mse = entry.mse
    with np.errstate(divide="ignore"):
        psnr = 10 * np.log10(1 / mse)
    return {"MSE": mse, "PSNR": psnr, "SSIM": entry.derived["ssim"]}


def tokens_needed(curves: dict, metric: str, target: float) -> int | None:
    """The fewest tokens whose image reaches the target: the image's variable length (footnote 1)."""
    values = curves[metric]
    reached = values <= target if metric == "MSE" else values >= target
    return int(np.argmax(reached)) + 1 if reached.any() else None


def entropy(entry: Entry) -> float:
    if "entropy" not in entry.derived:
        entry.derived["entropy"] = metrics.entropy(entry.image)
    return entry.derived["entropy"]


# ---------------------------------------------------------------------------------------------
# Views: numpy pictures of tokens, masks and reconstructions.


def on_grey(contribution: np.ndarray) -> np.ndarray:
    """A token's addition on its own, over the empty (mid-grey) reconstruction."""
    return to_uint8(EMPTY + contribution.astype(np.float32))


def signed_heatmap(contribution: np.ndarray) -> np.ndarray:
    """The addition summed over colour channels: red adds light, blue removes it, white nothing;
    scaled to this token's largest magnitude (as the paper's Fig. 6)."""
    v = contribution.sum(-1, dtype=np.float32)
    t = (v / max(float(np.abs(v).max()), 1e-6))[..., None]
    white = np.ones(3, np.float32)
    return to_uint8(np.where(t >= 0, white + t * (POSITIVE - white), white - t * (NEGATIVE - white)))


def token_weights(contributions: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    """(n, H, W) how much each pixel belongs to each token: its mask, or for a vanilla model
    (no masks) the size of its addition."""
    if masks is not None:
        return masks.astype(np.float32)
    return np.abs(contributions).mean(-1, dtype=np.float32)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def label_overlay(image: np.ndarray, labels: np.ndarray, numbers: list[int]) -> np.ndarray:
    """The image tinted by token (the one whose weight is largest at each pixel), each region
    numbered: 1-based token numbers[label]."""
    tinted = (0.45 * image.astype(np.float32) + 0.55 * PALETTE[labels % len(PALETTE)]).astype(np.uint8)
    picture = Image.fromarray(tinted)
    draw = ImageDraw.Draw(picture)
    h, w = labels.shape
    font = _font(max(11, min(h, w) // 18))
    for label in np.unique(labels):
        ys, xs = np.nonzero(labels == label)
        if len(ys) < 0.002 * h * w:
            continue
        i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)  # the region pixel nearest its centroid
        draw.text((int(xs[i]), int(ys[i])), str(numbers[label]), fill="white", font=font, anchor="mm", stroke_width=2, stroke_fill="black")
    return np.asarray(picture)


def highlight(overlay: np.ndarray, labels: np.ndarray, label: int) -> np.ndarray:
    """Dim every region but `label`'s."""
    keep = (labels == label)[..., None]
    return np.where(keep, overlay, (overlay * 0.35 + 90).astype(np.uint8))


def entry_overlay(entry: Entry) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W), numbered overlay) of an entry, computed once."""
    if "overlay" not in entry.derived:
        labels = token_weights(entry.contributions, entry.masks).argmax(0)
        entry.derived["overlay"] = labels, label_overlay(entry.image, labels, list(range(1, len(entry) + 1)))
    return entry.derived["overlay"]


def past_training(k: int, trained: int | None) -> bool:
    return trained is not None and k > trained


def token_views(entry: Entry, k: int, trained: int | None) -> tuple:
    """What the Tokens tab shows for the first k tokens: (reconstruction, token k alone, its
    signed heatmap, its mask or |addition|, the overlay with its region lit, caption)."""
    k = int(min(max(k, 1), len(entry)))
    contribution = entry.contributions[k - 1]
    if entry.masks is not None:
        mask = np.repeat(entry.masks[k - 1][..., None], 3, axis=-1)
    else:
        magnitude = np.abs(contribution.astype(np.float32)).mean(-1)
        mask = np.repeat(to_uint8(magnitude / max(float(magnitude.max()), 1e-6))[..., None], 3, axis=-1)
    labels, overlay = entry_overlay(entry)
    psnr = 10 * np.log10(1 / entry.mse[k - 1]) if entry.mse[k - 1] > 0 else float("inf")
    caption = f"**First {k} of {len(entry)} tokens** · PSNR {psnr:.1f} dB"
    if past_training(k, trained):
        caption += f' · <span style="color:{PAST_TRAINING}">past the {trained} tokens this checkpoint was trained with</span>'
    return entry.reconstructions[k - 1], on_grey(contribution), signed_heatmap(contribution), mask, highlight(overlay, labels, k - 1), caption


def paper_strip(entry: Entry, trained: int | None, tile: int = 96) -> np.ndarray:
    """All tokens side by side as in the paper's Figs. 3, 5 and 6: each token alone, its mask
    (its signed heatmap for a vanilla model), the image from the first k tokens; last column the
    source, the overlay of all tokens, the source again. Counts past training in orange."""
    H, W = entry.image.shape[:2]
    th, tw = max(1, round(tile * H / max(H, W))), max(1, round(tile * W / max(H, W)))
    gap, left, top, bottom = 4, 86, 40, 20  # top: room for the numbers below gradio's label badge
    n = len(entry)
    second = "mask" if entry.masks is not None else "signed"
    rows = [("token alone", [on_grey(c) for c in entry.contributions])]
    if entry.masks is not None:
        rows.append((second, [np.repeat(m[..., None], 3, -1) for m in entry.masks]))
    else:
        rows.append((second, [signed_heatmap(c) for c in entry.contributions]))
    rows.append(("first k tokens", list(entry.reconstructions)))
    last = [entry.image, entry_overlay(entry)[1], entry.image]
    canvas = Image.new("RGB", (left + (n + 1) * (tw + gap) + gap, top + 3 * (th + gap) + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    for r, (name, pictures) in enumerate(rows):
        y = top + r * (th + gap)
        draw.text((6, y + th // 2), name, fill="black", font=font, anchor="lm")
        for c, picture in enumerate([*pictures, last[r]]):
            x = left + c * (tw + gap) + (gap if c == n else 0)
            canvas.paste(Image.fromarray(picture).resize((tw, th), Image.Resampling.BILINEAR), (x, y))
    for c in range(n + 1):
        x = left + c * (tw + gap) + tw // 2 + (gap if c == n else 0)
        label, colour = ("source", "black") if c == n else (str(c + 1), PAST_TRAINING if past_training(c + 1, trained) else "black")
        draw.text((x, top - 4), label, fill=colour, font=font, anchor="ms")
    note = "top: each token's addition on grey; middle: " + ("its mask" if entry.masks is not None else "its addition, red adds and blue removes light")
    note += "; bottom: the image from the first k tokens"
    if trained is not None and n > trained:
        note += f"; orange: past the {trained} tokens the checkpoint was trained with"
    draw.text((6, canvas.height - 6), note, fill="#444444", font=_font(11), anchor="ls")
    return np.asarray(canvas)


def progressive_gif(entry: Entry, trained: int | None, path: Path) -> Path:
    """An animated GIF: the source beside the image from the first k tokens, k = 1..n."""
    H, W = entry.image.shape[:2]
    scale = max(1, 256 // max(H, W))  # small images are enlarged (nearest) so the GIF is legible
    frames, font = [], _font(14)
    for k in range(1, len(entry) + 1):
        frame = Image.new("RGB", (2 * W * scale + 12, H * scale + 28), "white")
        for i, picture in enumerate((entry.image, entry.reconstructions[k - 1])):
            frame.paste(Image.fromarray(picture).resize((W * scale, H * scale), Image.Resampling.NEAREST), (4 + i * (W * scale + 4), 24))
        text = f"source | first {k} of {len(entry)} tokens" + (" (past training)" if past_training(k, trained) else "")
        ImageDraw.Draw(frame).text((6, 4), text, fill=PAST_TRAINING if past_training(k, trained) else "black", font=font)
        frames.append(frame)
    durations = [500] * (len(frames) - 1) + [2000]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return path


def quality_figure(curves: list[tuple[str, dict, int | None]], metric: str, target: float | None) -> go.Figure:
    """PSNR (or MSE) on the left axis and SSIM on the right against the number of tokens, one
    pair of lines per checkpoint; counts past training shaded, the target drawn."""
    left = "MSE" if metric == "MSE" else "PSNR"
    figure = go.Figure()
    styles = ["solid", "dash", "dot", "dashdot"]
    for i, (name, q, trained) in enumerate(curves):
        x = np.arange(1, len(q["MSE"]) + 1)
        psnr = np.where(np.isfinite(q["PSNR"]), q["PSNR"], np.nan)
        y = q["MSE"] if left == "MSE" else psnr
        dash = styles[i % len(styles)]
        figure.add_scatter(x=x, y=y, name=f"{left} · {name}", mode="lines+markers", line=dict(color="#1f77b4", dash=dash))
        figure.add_scatter(x=x, y=q["SSIM"], name=f"SSIM · {name}", mode="lines+markers", yaxis="y2", line=dict(color="#2ca02c", dash=dash))
        if trained is not None and trained < len(x):
            figure.add_vrect(x0=trained + 0.5, x1=len(x) + 0.5, fillcolor=PAST_TRAINING, opacity=0.06 if len(curves) > 1 else 0.08, line_width=0)
            if i == 0:
                figure.add_annotation(x=trained + 0.5, y=1, yref="paper", text="past training", showarrow=False, xanchor="left", font=dict(color=PAST_TRAINING))
    if target is not None:
        figure.add_hline(y=target, line=dict(color="#888", dash="dot"), yref="y2" if metric == "SSIM" else "y", annotation_text=f"target {metric}")
    figure.update_layout(
        xaxis=dict(title="tokens", dtick=1 if len(curves[0][1]["MSE"]) <= 20 else None),
        yaxis=dict(title="MSE (on [0, 1] pixels)" if left == "MSE" else "PSNR (dB)", type="log" if left == "MSE" else "linear", color="#1f77b4"),
        yaxis2=dict(title="SSIM", overlaying="y", side="right", range=[0, 1], color="#2ca02c"),
        legend=dict(orientation="h", y=-0.2),
        margin=dict(l=60, r=60, t=30, b=40),
        height=380,
    )
    return figure


# ---------------------------------------------------------------------------------------------
# Edits: the session keeps a list of operations; replaying them over the encoded tokens gives
# the edited sequence, and only tokens that differ from any decoded before are decoded again.


@dataclass
class Item:
    """One token of the edited sequence: the token before the user's offset and strength, where it
    came from (hashable), and what the user set."""

    token: Tokens  # one token
    origin: tuple
    dx: float = 0.0
    dy: float = 0.0
    strength: float = 1.0
    on: bool = True

    @property
    def identity(self) -> tuple:
        return (self.origin, self.dx, self.dy, self.strength)

    @property
    def unedited(self) -> bool:
        return len(self.origin) == 2 and self.origin[0] == "token" and (self.dx, self.dy, self.strength) == (0.0, 0.0, 1.0)

    def final(self) -> Tokens:
        token = self.token
        if self.dx or self.dy:
            token = edit.translate(token, 0, self.dx, self.dy)
        if self.strength != 1.0:
            token = edit.scale(token, 0, self.strength)
        return token


def replay(entry: Entry, history: list, donors: dict) -> list[Item]:
    """The edited sequence after `history` (ops as lists, indices 0-based). An impossible op raises
    ValueError with a message for the user. donors: cache key -> Entry of a transplant donor."""
    items = [Item(entry.tokens[i], ("token", i)) for i in range(len(entry))]

    def item(i, verb: str, must_be_on: bool = True) -> Item:
        if not (isinstance(i, int) and 0 <= i < len(items)):
            raise ValueError(f"There is no token {i + 1 if isinstance(i, int) else i} to {verb}: the tokens are 1 to {len(items)}.")
        if must_be_on and not items[i].on:
            raise ValueError(f"Token {i + 1} is switched off: switch it on to {verb} it.")
        return items[i]

    for op in history:
        kind, args = op[0], op[1:]
        if kind == "switch":
            on = set(args[0])
            for i in on:
                item(i, "switch on", must_be_on=False)
            for i, it in enumerate(items):
                it.on = i in on
        elif kind == "solo":
            item(args[0], "solo", must_be_on=False)
            for i, it in enumerate(items):
                it.on = i == args[0]
        elif kind == "strength":
            if not 0 <= args[1] <= 10:
                raise ValueError(f"A strength of {args[1]} is out of range (0 to 10).")
            item(args[0], "change the strength of").strength = float(args[1])
        elif kind == "move":
            it = item(args[0], "move")
            H, W = entry.image.shape[:2]
            if abs(args[1]) > W or abs(args[2]) > H:
                raise ValueError(f"A move of ({args[1]:+g}, {args[2]:+g}) px leaves the {W}×{H} image.")
            it.dx, it.dy = float(args[1]), float(args[2])
        elif kind == "transplant":
            donor_key, j = args
            if len(items) >= MAX_EDITED_TOKENS:
                raise ValueError(f"At most {MAX_EDITED_TOKENS} tokens, please.")
            donor = donors.get(donor_key)
            if donor is None:
                raise ValueError("The donor image is no longer available: choose it again.")
            if not 0 <= j < len(donor):
                raise ValueError(f"The donor has no token {j + 1}: its tokens are 1 to {len(donor)}.")
            moved = edit.transplant(Tokens.empty(entry.tokens.latents.shape[1], entry.tokens.image_size), donor.tokens, j)
            items.append(Item(moved, ("transplant", donor_key, j)))
        elif kind == "scatter":
            scattered = edit.scatter(Tokens.cat([it.token for it in items]), seed=int(args[0]))
            for i, it in enumerate(items):
                it.token, it.origin = scattered[i], (*it.origin, "scatter", int(args[0]), i)
        else:
            raise ValueError(f"Unknown edit {kind!r}.")
    return items


def render_items(vle: vle_core.VLE, model_id: str, key: str, entry: Entry, items: list[Item]) -> tuple[np.ndarray, np.ndarray | None]:
    """(contributions (m, H, W, 3) float32, masks (m, H, W) uint8 or None) of every item, on or
    off; unedited tokens come from the entry (cache key `key`), others from earlier decodes or
    one batched decode."""
    H, W = entry.image.shape[:2]
    found, missing = {}, []
    for i, it in enumerate(items):
        if it.unedited:
            index = it.origin[1]
            found[i] = (entry.contributions[index], None if entry.masks is None else entry.masks[index])
        elif (hit := _decoded.get((model_id, key, it.identity))) is not None:
            found[i] = hit
        else:
            missing.append(i)
    if missing:
        rendering = _render(vle, Tokens.cat([items[i].final() for i in missing]))
        for row, i in enumerate(missing):
            value = (rendering.contributions[row].astype(np.float16), None if rendering.masks is None else to_uint8(rendering.masks[row]))
            _decoded.put((model_id, key, items[i].identity), value, value[0].nbytes + (0 if value[1] is None else value[1].nbytes))
            found[i] = value
    contributions = np.stack([found[i][0] for i in range(len(items))]).astype(np.float32) if items else np.zeros((0, H, W, 3), np.float32)
    masks = None if entry.masks is None or not items else np.stack([found[i][1] for i in range(len(items))])
    return contributions, masks


def describe(op: list) -> str:
    kind = op[0]
    if kind == "switch":
        return f"tokens on: {', '.join(str(i + 1) for i in sorted(op[1])) or 'none'}"
    if kind == "solo":
        return f"solo token {op[1] + 1}"
    if kind == "strength":
        return f"token {op[1] + 1} at strength {op[2]:g}"
    if kind == "move":
        return f"token {op[1] + 1} moved by ({op[2]:+g}, {op[3]:+g}) px"
    if kind == "transplant":
        return f"transplanted donor token {op[2] + 1}"
    return f"scattered all tokens (seed {op[1]})"


# ---------------------------------------------------------------------------------------------
# Sessions: gr.State holds the cache keys, the sources needed to rebuild an evicted entry
# (small: the working-size image) and the edit history; never the big arrays.


def new_state(checkpoint: str, model_id: str, key: str, source: tuple, n: int, note: str) -> dict:
    return {"checkpoint": checkpoint, "model_id": model_id, "key": key, "n": n, "note": note, "sources": {key: source}, "history": []}


def require(state: dict | None) -> dict:
    if not state:
        raise gr.Error("Encode an image first: upload one or choose an example.")
    return state


def session(state: dict) -> tuple[vle_core.VLE, Entry]:
    """(model, this session's entry), re-fetched from the caches."""
    model_id, vle = get_model(state["checkpoint"])
    if model_id != state["model_id"]:
        raise gr.Error(f"Checkpoint {state['checkpoint']} has changed on disk since this image was encoded: encode it again.")
    return vle, get_entry(model_id, vle, state["sources"][state["key"]], state["n"])[1]


def donor_entries(state: dict, vle: vle_core.VLE, history: list) -> dict:
    """Cache key -> Entry of every transplant donor the history uses."""
    keys = {op[1] for op in history if op[0] == "transplant"}
    return {key: get_entry(state["model_id"], vle, state["sources"][key], state["n"])[1] for key in keys if key in state["sources"]}


@dataclass
class Edited:
    """The edited sequence and what it decodes to."""

    items: list[Item]
    contributions: np.ndarray  # (m, H, W, 3) float32, every item
    masks: np.ndarray | None  # (m, H, W) uint8

    @property
    def on(self) -> list[int]:
        return [i for i, it in enumerate(self.items) if it.on]

    @cached_property
    def image(self) -> np.ndarray:
        return to_uint8(EMPTY + self.contributions[self.on].sum(0))

    def tokens(self) -> Tokens:
        return (
            Tokens.cat([self.items[i].final() for i in self.on])
            if self.on
            else Tokens.empty(self.items[0].token.latents.shape[1], self.items[0].token.image_size)
        )


def edited(state: dict, history: list | None = None) -> tuple[vle_core.VLE, Entry, Edited]:
    history = state["history"] if history is None else history
    vle, entry = session(state)
    try:
        items = replay(entry, history, donor_entries(state, vle, history))
    except ValueError as e:
        raise gr.Error(str(e)) from e
    return vle, entry, Edited(items, *render_items(vle, state["model_id"], state["key"], entry, items))


def edit_overlay(entry: Entry, result: Edited, selected: int) -> np.ndarray:
    """The edited tokens' regions over the edited image, the selected token's lit."""
    on = result.on
    picture = result.image
    if not on:
        return picture
    labels = token_weights(result.contributions[on], None if result.masks is None else result.masks[on]).argmax(0)
    overlay = label_overlay(picture, labels, [i + 1 for i in on])
    return highlight(overlay, labels, on.index(selected)) if selected in on else overlay


def edit_views(state: dict, entry: Entry, result: Edited, selected: int) -> tuple:
    """(edited image, overlay, tokens-on choices, token picker, strength, dx, dy, log)."""
    m, (H, W) = len(result.items), entry.image.shape[:2]
    selected = min(max(selected, 0), m - 1)
    it = result.items[selected]
    choices = [(f"{i + 1}" + (" (transplant)" if item.origin[0] == "transplant" else ""), i + 1) for i, item in enumerate(result.items)]
    history = state["history"]
    log = f"**{len(result.on)} of {m} tokens on**"
    if history:
        psnr = metrics.psnr(entry.image, result.image)
        log += f" · PSNR against the source {psnr:.1f} dB · {len(history)} edit{'s' * (len(history) > 1)}: " + "; ".join(describe(op) for op in history[-6:])
        log += " …" if len(history) > 6 else ""
    else:
        log += " · no edits yet"
    return (
        png(result.image),
        png(edit_overlay(entry, result, selected)),
        gr.update(choices=choices, value=[i + 1 for i in result.on]),
        gr.update(maximum=max(m, 2), value=selected + 1, interactive=m > 1),
        it.strength,
        gr.update(value=it.dx, minimum=-W, maximum=W),
        gr.update(value=it.dy, minimum=-H, maximum=H),
        log,
    )


def apply_edit(state: dict | None, op: list, selected: int) -> tuple:
    """Append an op (refused with a clear message if impossible) and show the result."""
    state = require(state)
    history = state["history"] + [op]
    vle, entry, result = edited(state, history)
    state = {**state, "history": history}
    return (state, *edit_views(state, entry, result, selected))


# ---------------------------------------------------------------------------------------------
# Handlers: one per action, each an API endpoint (api_name in the layout below).


def session_outputs(state: dict, vle: vle_core.VLE, entry: Entry, info: str) -> tuple:
    """What a fresh session shows first: the Tokens tab at k = n (the strip and the Edit tab
    follow from on_details, so that the first views come as soon as possible)."""
    n, trained = len(entry), vle.trained_tokens
    label = "First k tokens" + (f" (the checkpoint was trained with up to {trained}; past that is extrapolation)" if trained else "")
    mask_label = "Token k's mask" if entry.masks is not None else "Token k's size (no masks)"
    views = shown_token_views(entry, n, trained)
    return (
        state,
        info,
        gr.update(maximum=n, value=n, label=label, interactive=n > 1),
        views[0],
        views[1],
        views[2],
        gr.update(value=views[3], label=mask_label),
        views[4],
        views[5],
        gr.update(maximum=max(n, 2)),
    )


def empty_outputs(message: str) -> tuple:
    return (None, message, gr.update(), None, None, None, None, None, "", gr.update())


def on_encode(image, n_tokens: float, working_size: float, checkpoint: str, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """Encode an image (a file path) into n_tokens tokens with a checkpoint, at a working size."""
    if image is None:
        return empty_outputs("Upload an image, paste one, take one with the webcam or choose an example.")
    picture = read_image(image)
    working, note = fit_working_size(picture, int(working_size))
    model_id, vle = get_model(checkpoint)
    n = int(min(max(int(n_tokens), 1), N_TOKENS_MAX))
    progress(0.05, desc=f"Encoding {n} tokens with {checkpoint}")
    start = time.perf_counter()
    key, entry, fresh = get_entry(model_id, vle, ("image", working), n)
    how = f"encoded in {time.perf_counter() - start:.2f} s on {vle.device.type}" if fresh else "from the cache"
    state = new_state(checkpoint, model_id, key, ("image", working), n, note)
    info = f"**{note}** · {n} tokens {how} · Shannon entropy {entropy(entry):.2f} bits"
    if vle.trained_tokens and n > vle.trained_tokens:
        info += f' · <span style="color:{PAST_TRAINING}">tokens {vle.trained_tokens + 1} to {n} are more than {checkpoint} was trained with</span>'
    return session_outputs(state, vle, entry, info)


def shown_token_views(entry: Entry, k: int, trained: int | None) -> tuple:
    """token_views as PNG files, written once per entry and k: coming back to a k costs nothing."""
    k = int(min(max(k, 1), len(entry)))
    shown = entry.derived.setdefault("shown", {})
    if k not in shown or not all(os.path.exists(path) for path in shown[k][:5]):
        *pictures, caption = token_views(entry, k, trained)
        shown[k] = (*(png(p) for p in pictures), caption)
    return shown[k]


def on_token(k: float, state: dict | None):
    """The Tokens tab for the first k tokens (cached arrays only: the encoder never runs here)."""
    if not state:
        return None, None, None, None, None, ""
    vle, entry = session(state)
    return shown_token_views(entry, int(k), vle.trained_tokens)


def on_select_token(state: dict | None, evt: gr.SelectData):
    """A click on the overlay picks the token whose mask (vanilla: |addition|) is largest there."""
    state = require(state)
    _, entry = session(state)
    labels, _ = entry_overlay(entry)
    x, y = (int(v) for v in evt.index)
    k = int(labels[min(max(y, 0), labels.shape[0] - 1), min(max(x, 0), labels.shape[1] - 1)]) + 1
    return k, k


def on_curve(metric: str, target: float | None, state: dict | None, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """The quality curve (PSNR or MSE, and SSIM, against tokens), tokens needed for the target, entropy."""
    if not state:
        return None, ""
    if metric not in TARGETS:
        raise gr.Error(f"The target metric is one of {', '.join(TARGETS)}, not {metric!r}.")
    progress(0.1, desc="Measuring SSIM")
    vle, entry = session(state)
    q = quality(state["key"], entry)
    target = None if target is None else float(target)
    figure = quality_figure([(state["checkpoint"], q, vle.trained_tokens)], metric, target)
    text = f"Shannon entropy of the image: **{entropy(entry):.2f} bits**"
    if target is not None:
        needed = tokens_needed(q, metric, target)
        relation = "≤" if metric == "MSE" else "≥"
        text = f"Tokens needed for {metric} {relation} {target:g}: **{needed if needed else f'more than {len(entry)}'}** · " + text
    if state["sources"][state["key"]][0] == "tokens":
        text += " · (loaded tokens: measured against their own final image, there is no source image)"
    return figure, text


def on_target_metric(metric: str):
    return TARGETS.get(metric, TARGETS["PSNR"])


def on_pick_edit_token(token: float, state: dict | None):
    """Show the picked token's strength and offset, and light its region."""
    if not state:
        return 1.0, 0, 0, None
    _, entry, result = edited(state)
    i = int(min(max(int(token), 1), len(result.items))) - 1
    it = result.items[i]
    return it.strength, it.dx, it.dy, png(edit_overlay(entry, result, i))


def on_select_edit_token(state: dict | None, evt: gr.SelectData):
    """A click on the edit overlay picks the switched-on token that is largest there."""
    state = require(state)
    _, _, result = edited(state)
    on = result.on
    if not on:
        raise gr.Error("All tokens are switched off.")
    weights = token_weights(result.contributions[on], None if result.masks is None else result.masks[on])
    x, y = (int(v) for v in evt.index)
    y, x = min(max(y, 0), weights.shape[1] - 1), min(max(x, 0), weights.shape[2] - 1)
    return on[int(weights[:, y, x].argmax())] + 1


def on_switch(tokens_on: list, state: dict | None, token: float = 1):
    """Switch tokens on and off: tokens_on lists the (1-based) tokens to keep on."""
    return apply_edit(state, ["switch", sorted(int(i) - 1 for i in tokens_on or [])], int(token) - 1)


def on_all_on(state: dict | None, token: float = 1):
    state = require(state)
    m = len(edited(state)[2].items)
    return apply_edit(state, ["switch", list(range(m))], int(token) - 1)


def on_solo(token: float, state: dict | None):
    """Keep only this (1-based) token on."""
    return apply_edit(state, ["solo", int(token) - 1], int(token) - 1)


def on_strength(token: float, strength: float, state: dict | None):
    """Scale the token's addition: 0 silences it, 1 is as encoded, 2 doubles it."""
    return apply_edit(state, ["strength", int(token) - 1, round(float(strength), 4)], int(token) - 1)


def on_move(token: float, dx: float, dy: float, state: dict | None):
    """Relocate the token to (dx, dy) px from where it was encoded (right and down positive)."""
    return apply_edit(state, ["move", int(token) - 1, round(float(dx)), round(float(dy))], int(token) - 1)


def on_move_to(token: float, state: dict | None, evt: gr.SelectData):
    """A click on the edited image moves the token so that its centre lands there."""
    state = require(state)
    _, entry, result = edited(state)
    i = int(token) - 1
    if not 0 <= i < len(result.items):
        raise gr.Error(f"There is no token {i + 1}.")
    it = result.items[i]
    if not it.on:
        raise gr.Error(f"Token {i + 1} is switched off: switch it on to move it.")
    weights = token_weights(result.contributions[[i]], None if result.masks is None else result.masks[[i]])[0]
    total = float(weights.sum())
    H, W = weights.shape
    if total > 0:
        ys, xs = np.mgrid[0:H, 0:W]
        cy, cx = float((weights * ys).sum() / total), float((weights * xs).sum() / total)
    else:
        cy, cx = H / 2, W / 2
    x, y = (float(v) for v in evt.index)
    dx = int(np.clip(round(it.dx + x - cx), -W, W))
    dy = int(np.clip(round(it.dy + y - cy), -H, H))
    return apply_edit(state, ["move", i, dx, dy], i)


def _donor(donor_image, state: dict) -> tuple[str, dict, Entry]:
    """(cache key, state that knows the donor, its entry): the donor image scaled to this image's
    long side and encoded by the same checkpoint into as many tokens."""
    if donor_image is None:
        raise gr.Error("Choose a donor image first.")
    vle, entry = session(state)
    source = ("image", fit_working_size(read_image(donor_image), max(entry.image.shape[:2]))[0])
    key, entry, _ = get_entry(state["model_id"], vle, source, state["n"])
    return key, {**state, "sources": {**state["sources"], key: source}}, entry


def on_donor(donor_image, donor_token: float, state: dict | None):
    """Encode the donor image (cached) and show its tokens, the chosen one lit."""
    if donor_image is None or not state:
        return None, gr.update()
    _, _, entry = _donor(donor_image, state)
    labels, overlay = entry_overlay(entry)
    j = int(min(max(int(donor_token), 1), len(entry)))
    return png(highlight(overlay, labels, j - 1)), gr.update(maximum=max(len(entry), 2), value=j)


def on_transplant(donor_image, donor_token: float, state: dict | None, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """Append token donor_token of a second image (encoded by the same checkpoint), in place."""
    state = require(state)
    progress(0.1, desc="Encoding the donor image")
    key, state, _ = _donor(donor_image, state)
    m = len(edited(state)[2].items)
    return apply_edit(state, ["transplant", key, int(donor_token) - 1], m)


def on_scatter(seed: float, state: dict | None, token: float = 1):
    """Move every token by its own random offset (Section 4's proposed experiment)."""
    return apply_edit(state, ["scatter", int(seed or 0)], int(token) - 1)


def on_undo(state: dict | None, token: float = 1):
    state = require(state)
    if not state["history"]:
        gr.Info("Nothing to undo.")
    state = {**state, "history": state["history"][:-1]}
    _, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, int(token) - 1))


def on_reset(state: dict | None, token: float = 1):
    state = {**require(state), "history": []}
    _, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, int(token) - 1))


def on_details(state: dict | None):
    """After an encode: the strip of all tokens and the (unedited) Edit tab."""
    if not state:
        return None, None, None, gr.update(choices=[], value=[]), gr.update(), 1.0, 0, 0, ""
    vle, entry, result = edited(state)
    if "strip" not in entry.derived or not os.path.exists(entry.derived["strip"]):
        entry.derived["strip"] = png(paper_strip(entry, vle.trained_tokens))
    return entry.derived["strip"], *edit_views(state, entry, result, 0)


def _export_path(state: dict, suffix: str) -> Path:
    """A fresh file in the exports folder; files older than an hour there are removed."""
    EXPORTS.mkdir(parents=True, exist_ok=True)
    remove_old_files(EXPORTS, age_s=3600)
    folder = EXPORTS / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder / f"vle-{state['checkpoint']}-{state['key'][:8]}{suffix}"


def on_export_gif(state: dict | None):
    """The progressive reconstruction (first 1, 2, ... n tokens) as an animated GIF."""
    state = require(state)
    vle, entry = session(state)
    return str(progressive_gif(entry, vle.trained_tokens, _export_path(state, "-progressive.gif")))


def on_export_strip(state: dict | None):
    """The paper-style strip of all tokens as a PNG."""
    state = require(state)
    vle, entry = session(state)
    path = _export_path(state, "-strip.png")
    Image.fromarray(paper_strip(entry, vle.trained_tokens, tile=128)).save(path)
    return str(path)


def on_export_tokens(state: dict | None):
    """The (edited) tokens that are switched on, as a safetensors file that load_tokens reads back."""
    state = require(state)
    _, _, result = edited(state)
    tokens = result.tokens()
    if len(tokens) == 0:
        raise gr.Error("All tokens are switched off: there is nothing to export.")
    path = _export_path(state, "-tokens.safetensors")
    tokens.save(path, metadata={"checkpoint": state["checkpoint"]})  # load_tokens refuses them for another checkpoint
    return str(path)


def on_load_tokens(file, checkpoint: str, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """View and edit tokens saved by export_tokens (decoded only, never encoded)."""
    if file is None:
        return empty_outputs("Load a tokens file exported from this app.")
    path = Path(file)
    try:
        tokens = Tokens.load(path)
        made_by = Tokens.metadata(path).get("checkpoint")
    except Exception as e:  # any unreadable file: Tokens.load says ValueError, safetensors may say more
        raise gr.Error(f"This is not a VLE tokens file: {e}") from e
    if made_by and made_by != checkpoint:
        raise gr.Error(f"These tokens were made by checkpoint {made_by}: choose it in the Checkpoint menu, then load them again.")
    H, W = tokens.image_size
    if not 1 <= len(tokens) <= MAX_EDITED_TOKENS:
        raise gr.Error(f"The file holds {len(tokens)} tokens; between 1 and {MAX_EDITED_TOKENS}, please.")
    if min(H, W) < MIN_SIDE or max(H, W) > WORKING_SIZE_RANGE[1]:
        raise gr.Error(f"The tokens are for a {W}×{H} image; this app works up to {WORKING_SIZE_RANGE[1]} px.")
    if not all(torch.isfinite(t).all() for t in (tokens.latents, tokens.mean, tokens.std)):
        raise gr.Error("The tokens file holds non-finite numbers.")
    model_id, vle = get_model(checkpoint)
    progress(0.1, desc=f"Decoding {len(tokens)} tokens")
    key, entry, _ = get_entry(model_id, vle, ("tokens", tokens), len(tokens))
    note = f"{len(tokens)} tokens loaded from {path.name} for a {W}×{H} image"
    state = new_state(checkpoint, model_id, key, ("tokens", tokens), len(tokens), note)
    return session_outputs(state, vle, entry, f"**{note}** (decoded, not encoded: there is no source image)")


def on_compare(checkpoint_a: str, checkpoint_b: str, k: float, state: dict | None, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """Two checkpoints on this session's image: the first k tokens, their masks, both curves."""
    state = require(state)
    kind, image = state["sources"][state["key"]]
    if kind != "image":
        raise gr.Error("Comparing needs a source image; these tokens were loaded from a file.")
    shown, curves = [], []
    for name in (checkpoint_a, checkpoint_b):
        progress(0.1 + 0.4 * len(curves), desc=f"Encoding with {name}")
        model_id, vle = get_model(name)
        key, entry, _ = get_entry(model_id, vle, ("image", image), state["n"])
        views = shown_token_views(entry, int(k), vle.trained_tokens)
        shown += [views[0], views[4]]
        curves.append((name, quality(key, entry), vle.trained_tokens))
    lines = [
        f"**{name}**: PSNR {q['PSNR'][min(int(k), len(q['PSNR'])) - 1]:.1f} dB, SSIM {q['SSIM'][min(int(k), len(q['SSIM'])) - 1]:.3f} after {min(int(k), len(q['PSNR']))} tokens"
        for name, q, _ in curves
    ]
    return shown[0], shown[2], shown[1], shown[3], quality_figure(curves, "PSNR", None), " · ".join(lines)


def on_checkpoint_info(checkpoint: str | None):
    """The chosen checkpoint's summary and model card."""
    if not checkpoint:
        return f"No checkpoints in `{CHECKPOINTS}` yet.", ""
    folder = CHECKPOINTS / checkpoint
    try:
        card = (folder / "README.md").read_text() if checkpoint in checkpoint_names() else ""
    except OSError:
        card = ""
    return checkpoint_summary(checkpoint), card or "*(no model card)*"


def on_page_load():
    """New checkpoints appear in the menus on the next page load."""
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    return gr.update(choices=choices, value=default), gr.update(choices=choices, value=default), gr.update(choices=choices, value=second)


def example_images() -> list[str]:
    return sorted(str(p) for p in ASSETS.glob("*.png"))


# ---------------------------------------------------------------------------------------------
# Layout.

INTRO = """# VLE Explorer
Variable Length Embeddings ([Chiu, Gu and Zhou, 2023](https://arxiv.org/abs/2305.09967)) describe an image by a sequence of tokens,
each encoding what the earlier ones left out. Encode an image, step through its tokens, see what each one adds and where (its mask),
then switch, scale, move or transplant tokens: an edit only decodes, it never re-encodes."""


VIEWS_GUIDE = """**Reading the views**

*First k tokens*: the image rebuilt from tokens 1 to k.
*Token k alone*: what token k adds, over the mid-grey of the empty reconstruction.
*Signed*: the same addition summed over the colours, red adding light and blue removing it, scaled to its largest value.
*Mask*: where token k claims the image (masked VLE); a vanilla VLE has no masks, so this shows how much it changes each pixel.
*Regions*: each pixel tinted by the token that claims it most (vanilla: that changes it most), the selected token lit.
Click a region to select its token, here and in Edit."""


def build_demo() -> gr.Blocks:
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    summary, card = on_checkpoint_info(default)
    with gr.Blocks(title="VLE Explorer", delete_cache=(3600, 3600)) as demo:
        state = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                image = image_input(label="Image", sources=["upload", "webcam", "clipboard"], height=300, elem_id="image")
                gr.Examples(example_images(), inputs=[image], label="Examples (assets/)", examples_per_page=6)
                checkpoint = gr.Dropdown(choices=choices, value=default, label="Checkpoint", allow_custom_value=True, elem_id="checkpoint")
                checkpoint_summary_md = gr.Markdown(summary)
                with gr.Accordion("Model card", open=False):
                    card_md = gr.Markdown(card)
                with gr.Row():
                    working_size = gr.Slider(*WORKING_SIZE_RANGE, value=WORKING_SIZE, step=32, label="Working size (long side, px)", elem_id="working-size")
                    n_tokens = gr.Slider(1, N_TOKENS_MAX, value=N_TOKENS, step=1, label="Tokens to encode (N)", elem_id="n-tokens")
                info = gr.Markdown(label="About this encoding", elem_id="info")
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Tokens"):
                        k = gr.Slider(1, N_TOKENS, value=N_TOKENS, step=1, label="First k tokens", elem_id="tokens")
                        caption = gr.Markdown(label="Caption", elem_id="caption")
                        with gr.Row():
                            view = dict(format="png", height=220, interactive=False)
                            recon = gr.Image(label="First k tokens", elem_id="recon", **view)
                            alone = gr.Image(label="Token k alone", elem_id="alone", **view)
                            heat = gr.Image(label="Token k, signed", elem_id="heatmap", **view)
                            mask = gr.Image(label="Token k's mask", elem_id="mask", **view)
                        with gr.Row():
                            overlay = gr.Image(
                                label="Regions: click one to select its token", format="png", height=300, interactive=False, elem_id="overlay", scale=2
                            )
                            gr.Markdown(VIEWS_GUIDE)
                        strip = gr.Image(label="All tokens, like the paper's Figs. 3, 5 and 6", format="png", interactive=False, elem_id="strip")
                    with gr.Tab("Quality"):
                        with gr.Row():
                            metric = gr.Radio(list(TARGETS), value="PSNR", label="Target metric", scale=1)
                            target = gr.Number(TARGETS["PSNR"], label="Target (PSNR in dB; MSE on [0, 1] pixels, the paper's 0.003 is 0.00075 here)", scale=2)
                        curve = gr.Plot(label="Quality against the number of tokens", elem_id="curve")
                        quality_md = gr.Markdown(label="Tokens needed and entropy", elem_id="quality")
                    with gr.Tab("Edit"):
                        with gr.Row():
                            edited_img = gr.Image(
                                label="Edited image: click to move the selected token there", format="png", height=360, interactive=False, elem_id="edited"
                            )
                            edit_overlay_img = gr.Image(
                                label="Edited tokens: click a region to select its token", format="png", height=360, interactive=False, elem_id="edit-overlay"
                            )
                        edit_log = gr.Markdown(label="Edits", elem_id="edit-log")
                        tokens_on = gr.CheckboxGroup(label="Tokens on", elem_id="tokens-on")
                        with gr.Row():
                            edit_token = gr.Slider(1, N_TOKENS, value=1, step=1, label="Selected token", elem_id="edit-token")
                            strength = gr.Slider(0, 3, value=1, step=0.05, label="Strength", elem_id="strength")
                            dx = gr.Slider(-WORKING_SIZE, WORKING_SIZE, value=0, step=1, label="Move right (px)", elem_id="dx")
                            dy = gr.Slider(-WORKING_SIZE, WORKING_SIZE, value=0, step=1, label="Move down (px)", elem_id="dy")
                        with gr.Row():
                            solo_btn = gr.Button("Solo selected", elem_id="solo")
                            all_on_btn = gr.Button("All on", elem_id="all-on")
                            undo_btn = gr.Button("Undo", elem_id="undo")
                            reset_btn = gr.Button("Reset", variant="stop", elem_id="reset")
                        with gr.Row():
                            seed = gr.Number(0, precision=0, label="Scatter seed", min_width=100)
                            scatter_btn = gr.Button("Scatter all tokens at random", elem_id="scatter")
                        with gr.Accordion("Transplant a token from a second image", open=False):
                            with gr.Row():
                                donor = image_input(label="Donor image", sources=["upload", "clipboard"], height=240, elem_id="donor")
                                donor_view = gr.Image(label="Donor tokens (the chosen one lit)", format="png", height=240, interactive=False)
                            with gr.Row():
                                donor_token = gr.Slider(1, N_TOKENS, value=1, step=1, label="Donor token")
                                transplant_btn = gr.Button("Transplant", elem_id="transplant")
                    with gr.Tab("Export"):
                        with gr.Row():
                            gif_btn = gr.Button("Progressive reconstruction (GIF)", elem_id="export-gif")
                            strip_btn = gr.Button("Token strip (PNG)", elem_id="export-strip")
                            tokens_btn = gr.Button("Edited tokens (safetensors)", elem_id="export-tokens")
                        export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
                        tokens_file = gr.File(
                            label="Load a tokens file to view and edit it (needs the checkpoint that made it)",
                            file_types=[".safetensors"],
                            elem_id="tokens-file",
                        )
                    with gr.Tab("Compare"):
                        with gr.Row():
                            compare_a = gr.Dropdown(choices=choices, value=default, label="Checkpoint A", allow_custom_value=True)
                            compare_b = gr.Dropdown(choices=choices, value=second, label="Checkpoint B", allow_custom_value=True)
                            compare_k = gr.Slider(1, N_TOKENS_MAX, value=8, step=1, label="First k tokens")
                            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
                        with gr.Row():
                            recon_a = gr.Image(label="A: first k tokens", format="png", height=256, interactive=False)
                            recon_b = gr.Image(label="B: first k tokens", format="png", height=256, interactive=False)
                            overlay_a = gr.Image(label="A: token k's region", format="png", height=256, interactive=False)
                            overlay_b = gr.Image(label="B: token k's region", format="png", height=256, interactive=False)
                        compare_plot = gr.Plot(label="Both checkpoints (A solid, B dashed)", elem_id="compare-plot")
                        compare_md = gr.Markdown(label="Comparison")

        edit_outputs = [state, edited_img, edit_overlay_img, tokens_on, edit_token, strength, dx, dy, edit_log]
        session_outputs_ = [state, info, k, recon, alone, heat, mask, overlay, caption, donor_token]
        token_outputs = [recon, alone, heat, mask, overlay, caption]
        model = dict(concurrency_id="model", concurrency_limit=1)  # one model call at a time on 2 cores

        encoded = gr.on(
            [image.change, n_tokens.release, working_size.release, checkpoint.input],
            on_encode,
            [image, n_tokens, working_size, checkpoint],
            session_outputs_,
            api_name="encode",
            **model,
        )
        curve_inputs, curve_outputs = [metric, target, state], [curve, quality_md]
        details = [strip, *edit_outputs[1:]]
        encoded.success(on_details, [state], details, api_visibility="private", **model).success(
            on_curve, curve_inputs, curve_outputs, api_visibility="private", **model
        )
        k.change(on_token, [k, state], token_outputs, api_name="token", show_progress="hidden", trigger_mode="always_last")
        overlay.select(on_select_token, [state], [k, edit_token], api_visibility="private", show_progress="hidden")
        checkpoint.change(on_checkpoint_info, [checkpoint], [checkpoint_summary_md, card_md], api_visibility="private", show_progress="hidden")

        metric.input(on_target_metric, [metric], [target], api_visibility="private", show_progress="hidden")
        target.change(on_curve, curve_inputs, curve_outputs, api_name="curve", trigger_mode="always_last", **model)

        tokens_on.input(on_switch, [tokens_on, state, edit_token], edit_outputs, api_name="switch", **model)
        all_on_btn.click(on_all_on, [state, edit_token], edit_outputs, api_name="all_on", **model)
        solo_btn.click(on_solo, [edit_token, state], edit_outputs, api_name="solo", **model)
        strength.release(on_strength, [edit_token, strength, state], edit_outputs, api_name="strength", **model)
        gr.on([dx.release, dy.release], on_move, [edit_token, dx, dy, state], edit_outputs, api_name="move", **model)
        edited_img.select(on_move_to, [edit_token, state], edit_outputs, api_visibility="private", **model)
        edit_overlay_img.select(on_select_edit_token, [state], [edit_token], api_visibility="private", show_progress="hidden")
        edit_token.change(on_pick_edit_token, [edit_token, state], [strength, dx, dy, edit_overlay_img], api_visibility="private", show_progress="hidden")
        scatter_btn.click(on_scatter, [seed, state, edit_token], edit_outputs, api_name="scatter", **model)
        undo_btn.click(on_undo, [state, edit_token], edit_outputs, api_name="undo", **model)
        reset_btn.click(on_reset, [state, edit_token], edit_outputs, api_name="reset", **model)
        gr.on([donor.change, donor_token.release], on_donor, [donor, donor_token, state], [donor_view, donor_token], api_visibility="private", **model)
        transplant_btn.click(on_transplant, [donor, donor_token, state], edit_outputs, api_name="transplant", **model)

        gif_btn.click(on_export_gif, [state], [export_file], api_name="export_gif", **model)
        strip_btn.click(on_export_strip, [state], [export_file], api_name="export_strip", **model)
        tokens_btn.click(on_export_tokens, [state], [export_file], api_name="export_tokens", **model)
        loaded = tokens_file.upload(on_load_tokens, [tokens_file, checkpoint], session_outputs_, api_name="load_tokens", **model)
        loaded.success(on_details, [state], details, api_visibility="private", **model).success(
            on_curve, curve_inputs, curve_outputs, api_visibility="private", **model
        )

        gr.on(
            [compare_btn.click, compare_k.release],
            on_compare,
            [compare_a, compare_b, compare_k, state],
            [recon_a, recon_b, overlay_a, overlay_b, compare_plot, compare_md],
            api_name="compare",
            **model,
        )
        demo.load(on_page_load, None, [checkpoint, compare_a, compare_b], api_visibility="private", show_progress="hidden")
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.queue(max_size=32, default_concurrency_limit=4).launch(max_file_size=MAX_FILE_SIZE)
