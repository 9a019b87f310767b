"""Views: numpy pictures of tokens, masks and reconstructions, drawn from a cache entry."""

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vle_core import EMPTY

from .cache import Entry
from .images import png, to_uint8

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


def load_font(size: int):
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
    font = load_font(max(11, min(h, w) // 18))
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
    font = load_font(12)
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
    draw.text((6, canvas.height - 6), note, fill="#444444", font=load_font(11), anchor="ls")
    return np.asarray(canvas)


def shown_token_views(entry: Entry, k: int, trained: int | None) -> tuple:
    """token_views as PNG files, written once per entry and k: coming back to a k costs nothing."""
    k = int(min(max(k, 1), len(entry)))
    shown = entry.derived.setdefault("shown", {})
    if k not in shown or not all(os.path.exists(path) for path in shown[k][:5]):
        *pictures, caption = token_views(entry, k, trained)
        shown[k] = (*(png(p) for p in pictures), caption)
    return shown[k]
