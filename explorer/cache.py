"""The encodings cache: one entry per (image content, checkpoint, working size), on disk
(bounded, plain numpy archives, never pickles) with the most recent ones also decoded in
memory; and the quality figures measured from an entry."""

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import diskcache
import gradio as gr
import numpy as np
import torch

import vle_core
from vle_core import Tokens, metrics
from vle_core.figures import from_uint8, to_uint8
from vle_core.tokens import latent_grid

from . import settings
from .errors import UserError
from .models import encode_image, render_tokens

F16_MAX = float(np.finfo(np.float16).max)  # contributions are stored as float16


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
    source: str = "image"  # or "tokens": loaded from a file, `image` is then their own decode

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def nbytes(self) -> int:
        arrays = [self.image, self.contributions, self.reconstructions, self.tokens.latents.numpy()]
        return sum(a.nbytes for a in arrays) + (0 if self.masks is None else self.masks.nbytes)

    @classmethod
    def from_rendering(cls, rendering: vle_core.Rendering, image: np.ndarray) -> "Entry":
        target = from_uint8(image)
        return cls(
            image=image,
            tokens=rendering.tokens,
            # a huge (loaded) token saturates, not inf
            contributions=np.clip(rendering.contributions, -F16_MAX, F16_MAX).astype(np.float16),
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
            self.derived["heads"][n] = Entry(
                self.image,
                self.tokens[:n],
                self.contributions[:n],
                self.reconstructions[:n],
                masks,
                self.mse[:n],
                source=self.source,
            )
        return self.derived["heads"][n]

    def to_bytes(self) -> bytes:
        arrays = dict(
            image=self.image, contributions=self.contributions, reconstructions=self.reconstructions, mse=self.mse
        )
        arrays |= {name: getattr(self.tokens, name).numpy() for name in ("latents", "mean", "std", "stage")}
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
                "stage": ((n,), np.int64),  # an entry without (an older version's) is recomputed
            } | ({"masks": ((n, H, W), np.uint8)} if "masks" in a else {})
        except (KeyError, ValueError, IndexError) as e:
            raise ValueError(f"malformed cache entry: {e}") from e
        for name, (shape, dtype) in expected.items():
            if name not in a:
                raise ValueError(f"cache entry has no {name}")
            if a[name].shape != shape or a[name].dtype != dtype:
                raise ValueError(
                    f"cache entry {name} is {a[name].dtype}{a[name].shape}, expected {np.dtype(dtype)}{shape}"
                )
        if n < 1 or not np.isfinite(a["contributions"]).all():
            raise ValueError("cache entry has no tokens or non-finite contributions")
        # stages below 1: ValueError
        tokens = Tokens(
            *(torch.from_numpy(a[name]) for name in ("latents", "mean", "std")), (H, W), torch.from_numpy(a["stage"])
        )
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


_entries = LRU(settings.MEMORY_MB * 2**20)  # cache key -> Entry
# What the Edit tab computes per edited token, so that an edit computes again only the token it changes.
# (model id, cache key, edits.Item.decoded_as) -> (contribution (H, W, 3) float16, mask (H, W) uint8 or None)
token_decodes = LRU(128 * 2**20)
# (model id, cache key, edits.Item.identity) -> the token's region weights where it is placed (views.token_weights)
token_regions = LRU(32 * 2**20)
_disk_cache: diskcache.Cache | None = None
_disk_lock = threading.Lock()


class BytesOnly(diskcache.Disk):
    """diskcache's storage for str keys and bytes values only. Its default unpickles any value its
    database marks as pickled: a damaged or tampered cache folder could then run code."""

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if not isinstance(value, bytes):
            raise TypeError("the encodings cache stores bytes only")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY):
            raise ValueError(f"cache value in mode {mode}: only raw bytes are read back, never pickles")
        return super().fetch(mode, filename, value, read)

    def get(self, key, raw):
        if not raw:
            raise ValueError("a pickled key in the encodings cache")
        return super().get(key, raw)


def _disk() -> diskcache.Cache | None:
    """The on-disk cache, opened on first use; None (memory only) if it cannot be opened or
    settings.CACHE_MB is 0 (VLE_CACHE_MB=0: the cache switched off)."""
    global _disk_cache
    if settings.CACHE_MB <= 0:
        return None
    with _disk_lock:
        if _disk_cache is None:
            try:
                limit = settings.CACHE_MB * 2**20
                _disk_cache = diskcache.Cache(str(settings.CACHE_DIR), size_limit=limit, disk=BytesOnly)
            except Exception as e:  # unwritable folder, broken database: run without a disk cache
                gr.Warning(
                    f"The encodings cache at {settings.CACHE_DIR} cannot be opened ({e}); working from memory only."
                )
                return None
        return _disk_cache


# A stored value is MAGIC, then SHA-256 of (its key, its payload), then the payload. Read back, a
# value whose digest does not match the key asked for is never served: a bit flipped on disk, a
# file cut short by a writer killed mid-write or a full disk, an entry stored under another key.
MAGIC = b"VLE-cache-1\n"


def seal(key: str, payload: bytes) -> bytes:
    return MAGIC + hashlib.sha256(key.encode() + b"\0" + payload).digest() + payload


def unseal(key: str, data: bytes) -> bytes:
    """The payload of a sealed value read back under key; ValueError unless it is intact."""
    head = len(MAGIC) + 32
    if not isinstance(data, bytes) or len(data) < head or not data.startswith(MAGIC):
        raise ValueError("not a sealed cache value")
    payload = data[head:]
    if hashlib.sha256(key.encode() + b"\0" + payload).digest() != data[len(MAGIC) : head]:
        raise ValueError("cache value does not match its key and checksum")
    return payload


disk_failures = 0  # writes refused by the disk (full, read-only) in this process


def reset() -> None:
    """Close the disk cache (reopened at settings.CACHE_DIR on next use) and empty the memory ones."""
    global _disk_cache
    with _disk_lock:
        if _disk_cache is not None:
            _disk_cache.close()
        _disk_cache = None
    _entries.clear()
    token_decodes.clear()
    token_regions.clear()


def _disk_get(key: str, parse):
    """parse(bytes) of a disk entry; an entry that fails to read or parse is deleted, never served."""
    disk = _disk()
    if disk is None:
        return None
    try:
        data = disk.get(key)
        return None if data is None else parse(unseal(key, data))
    except Exception:  # corrupt or cut-short file, another key's value, wrong shapes: recompute instead
        try:
            disk.delete(key)
        except Exception:
            pass
        return None


def _disk_set(key: str, data: bytes) -> None:
    global disk_failures
    disk = _disk()
    if disk is not None:
        try:
            disk.set(key, seal(key, data))
        except Exception as e:  # a full or read-only disk costs a recompute later, nothing else
            disk_failures += 1
            if disk_failures == 1:
                print(
                    f"explorer: the encodings cache at {settings.CACHE_DIR} refused a write ({e});"
                    " entries stay in memory only"
                )


def source_key(source: tuple, model_id: str) -> str:
    """Cache key of a source for a model: the content of the (working-size) image or tokens."""
    kind, data = source
    h = hashlib.sha256(f"{kind}|{model_id}|".encode())
    if kind == "image":
        h.update(repr(data.shape).encode())
        h.update(np.ascontiguousarray(data).tobytes())
    else:
        h.update(repr(data.image_size).encode())
        # the stage too: it picks the code a token decodes with
        for t in (data.latents, data.mean, data.std, data.stage):
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def get_entry(model_id: str, vle: vle_core.VLE, source: tuple, n: int, on_token=None) -> tuple[str, Entry, bool]:
    """(key, the first n tokens of `source`'s entry, whether the model just ran). The encoder runs
    only when neither memory nor disk holds at least n tokens of this source for this model.
    source: ("image", HxWx3 uint8 at working size) or ("tokens", Tokens); on_token(k, most)
    follows an encode."""
    key = source_key(source, model_id)
    entry = _stored(key, source, lambda stored: len(stored) >= n)
    fresh = entry is None or len(entry) < n
    if fresh:
        kind, data = source
        if kind == "image":
            entry = Entry.from_rendering(encode_image(vle, data, n, on_token=on_token), data)
        else:
            try:
                rendering = render_tokens(vle, data)
            except ValueError as e:
                raise UserError(f"These tokens do not fit this checkpoint: {e}") from e
            if not np.isfinite(rendering.contributions).all():  # finite numbers, but far outside what an encoder makes
                raise UserError(
                    "These tokens decode to non-finite pixels: the file is damaged or was not made by this app."
                )
            entry = Entry.from_rendering(rendering, to_uint8(rendering.reconstructions[-1]))
        _store(key, entry)
    entry.source = source[0]
    _entries.put(key, entry, entry.nbytes)
    return key, entry.head(min(n, len(entry))), fresh


def get_entry_until(
    model_id: str, vle: vle_core.VLE, image: np.ndarray, target_psnr: float, cap: int, on_token=None
) -> tuple[str, Entry, bool]:
    """(key, the first tokens of an image's entry whose reconstruction reaches target_psnr, or cap
    of them, whether the model just ran): its own length. A stored entry answers if it reaches
    the target or holds cap tokens; else the encoder runs until the target (VLE.encode), and its
    tokens are the first ones of any longer encode, so the entry serves fixed counts too."""
    source = ("image", image)
    key = source_key(source, model_id)
    entry = _stored(
        key, source, lambda stored: len(stored) >= cap or first_reaching(stored.mse, target_psnr) is not None
    )
    k = None if entry is None else first_reaching(entry.mse, target_psnr)
    fresh = entry is None or (k is None and len(entry) < cap)
    if fresh:
        entry = Entry.from_rendering(encode_image(vle, image, cap, target_psnr=target_psnr, on_token=on_token), image)
        _store(key, entry)
        k = first_reaching(entry.mse, target_psnr)
    entry.source = "image"
    _entries.put(key, entry, entry.nbytes)
    return key, entry.head(min(k or cap, len(entry))), fresh


def first_reaching(mse: np.ndarray, target_psnr: float) -> int | None:
    """The fewest tokens whose MSE (on [0, 1] pixels) is within target_psnr dB; None if none are."""
    reached = mse <= 10 ** (-target_psnr / 10)
    return int(np.argmax(reached)) + 1 if reached.any() else None


def _stored(key: str, source: tuple, enough) -> Entry | None:
    """The entry of a source from memory, or from disk where memory's is missing or not
    enough(entry); None if neither holds one."""
    entry = _entries.get(key)
    if entry is not None and enough(entry):
        return entry
    disk = _disk_get(f"entry/{key}", Entry.from_bytes)
    if disk is not None and disk.image.shape != _source_shape(source):
        disk = None  # a key collision cannot happen in practice; a wrong entry must still not be served
    return disk if disk is not None and (entry is None or len(disk) > len(entry)) else entry


def _store(key: str, entry: Entry) -> None:
    _disk_set(f"entry/{key}", entry.to_bytes())


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
