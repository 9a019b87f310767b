"""Views: numpy pictures of tokens, masks and reconstructions, drawn from a cache entry."""

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import uniform_filter

from vle_core import EMPTY
from vle_core.figures import from_uint8, signed_heatmap, to_uint8
from vle_core.metrics import COVERING, covering

from .cache import Entry
from .images import view_file

PALETTE = np.array(  # one colour per token in overlays and strips (cycled past 20)
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
        (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
    ],
    np.float32,
)  # fmt: skip
PAST_TRAINING = "#d9480f"  # marks token counts beyond what the checkpoint was trained with


def on_grey(contribution: np.ndarray) -> np.ndarray:
    """A token's addition on its own, over the empty (mid-grey) reconstruction."""
    return to_uint8(EMPTY + contribution.astype(np.float32))


def count(n: int, noun: str = "token") -> str:
    """'1 token', '2 tokens'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def token_weights(contributions: np.ndarray, masks: np.ndarray | None, stages=None) -> np.ndarray:
    """(n, H, W) how much each pixel belongs to each token: its mask, or for a vanilla model (no
    masks) the size of its addition relative to its own mean size, averaged over a neighbourhood.
    Token 1 of a vanilla VLE adds the most almost everywhere; relative to its mean, each token
    claims the pixels it changes most for its own size, so every token gets a region a user can
    click; the neighbourhood (1/16 of the short side) makes regions rather than speckle.
    A masked VLE's whole-image tokens (metrics.covering: masks over 90% of the image) weigh a flat
    half wherever their mask is on, so they claim only the pixels no region token claims, and of
    those the first whole-image token claims all (their near-equal masks would otherwise split the
    rest in stripes). With `stages` ((n,) the stage each token was coded with), a region token's
    mask where it is on outweighs any of a later stage, so the token that took a pixel keeps it
    when a later pass of S refines it (as metrics.masks_to_labels). Each token's weights depend on
    its mask and stage alone (the Edit tab keeps them per token)."""
    if masks is not None:
        # the app keeps masks as uint8
        weights = from_uint8(masks) if masks.dtype == np.uint8 else masks.astype(np.float32)
        whole = covering(weights)
        if stages is not None:
            for k in np.flatnonzero(~whole):  # on: 1 + 1/stage, earlier stages first; the mask itself only breaks ties
                on = weights[k] > 0.5
                weights[k][on] = 1 + 1 / int(stages[k]) + 1e-5 * weights[k][on]
        weights[whole] = 0.5 * (weights[whole] > 0.5)
        return weights
    size = np.abs(contributions).mean(-1, dtype=np.float32)
    relative = size / np.maximum(size.mean(axis=(1, 2), keepdims=True), 1e-8)
    window = max(1, min(size.shape[1:]) // 16)
    return uniform_filter(relative, size=(1, window, window), mode="nearest") if window > 1 else relative


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
    size = max(11, min(h, w) // 18)
    font = load_font(size)
    placed = []  # label centres so far: a label that would overlap one is left out
    areas = np.bincount(labels.ravel(), minlength=len(numbers))
    for label in np.argsort(-areas):  # the largest regions get their numbers first
        if areas[label] < 0.002 * h * w:
            break
        ys, xs = np.nonzero(labels == label)
        i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)  # the region pixel nearest its centroid
        x, y = int(xs[i]), int(ys[i])
        if any(abs(x - px) < 1.6 * size and abs(y - py) < 1.1 * size for px, py in placed):
            continue
        placed.append((x, y))
        draw.text(
            (x, y), str(numbers[label]), fill="white", font=font, anchor="mm", stroke_width=2, stroke_fill="black"
        )
    return np.asarray(picture)


def highlight(overlay: np.ndarray, labels: np.ndarray, label: int) -> np.ndarray:
    """Dim every region but `label`'s."""
    keep = (labels == label)[..., None]
    return np.where(keep, overlay, (overlay * 0.35 + 90).astype(np.uint8))


def entry_overlay(entry: Entry) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W), numbered overlay) of an entry, computed once."""
    if "overlay" not in entry.derived:
        labels = token_weights(entry.contributions, entry.masks, entry.tokens.stage.numpy()).argmax(0)
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
    caption = f"**First {k} of {count(len(entry))}**"
    if entry.source == "image":
        psnr = 10 * np.log10(1 / entry.mse[k - 1]) if entry.mse[k - 1] > 0 else float("inf")
        caption += f" · PSNR {psnr:.1f} dB"
    else:
        caption += " · decoded from a tokens file, so there is no source image to measure against"
    if entry.masks is not None and (entry.masks[k - 1] > 127).mean() >= COVERING:
        caption += f" · token {k} covers the whole image: its mask is all white"
    if past_training(k, trained):
        caption += (
            f' · <span style="color:{PAST_TRAINING}">past the {count(trained)} this checkpoint was trained with</span>'
        )
    return (
        entry.reconstructions[k - 1],
        on_grey(contribution),
        signed_heatmap(contribution),
        mask,
        highlight(overlay, labels, k - 1),
        caption,
    )


def strip_legend(entry: Entry, trained: int | None) -> str:
    """What the strip's rows show, in words (under the strip in the page, in the exported file)."""
    middle = (
        "its mask" if entry.masks is not None else "its addition summed over colours (red adds light, blue removes it)"
    )
    legend = f"Top: each token's addition on grey. Middle: {middle}. Bottom: the image from the first k tokens."
    if trained is not None and len(entry) > trained:
        legend += f" Orange numbers: past the {count(trained)} the checkpoint was trained with."
    return legend


def paper_strip(
    entry: Entry, trained: int | None, tile: int = 96, legend: bool = False, edited: np.ndarray | None = None
) -> np.ndarray:
    """All tokens side by side as in the paper's Figs. 3, 5 and 6: each token alone, its mask
    (its signed heatmap for a vanilla model), the image from the first k tokens; a last column,
    labelled on its right, with the source, every token's region and the source again (or the
    `edited` image, (H, W, 3) uint8, where there are edits). Counts past training in orange.
    legend: the rows explained in words under the picture (the page says it in text instead,
    where it stays readable)."""
    H, W = entry.image.shape[:2]
    th, tw = max(1, round(tile * H / max(H, W))), max(1, round(tile * W / max(H, W)))
    n = len(entry)
    text = max(14, tile // 6)  # px; the picture is shown scaled down to the page's width
    gap, left, right, top = 4, 7 * text, 6 * text, 2 * text
    font, small = load_font(text), load_font(max(12, text - 2))
    second = "mask" if entry.masks is not None else "signed"
    rows = [("alone", [on_grey(c) for c in entry.contributions])]
    if entry.masks is not None:
        rows.append((second, [np.repeat(m[..., None], 3, -1) for m in entry.masks]))
    else:
        rows.append((second, [signed_heatmap(c) for c in entry.contributions]))
    rows.append(("first k", list(entry.reconstructions)))
    last = [
        ("source", entry.image),
        ("regions", entry_overlay(entry)[1]),
        ("source", entry.image) if edited is None else ("edited", edited),
    ]
    words = strip_legend(entry, trained) if legend else ""
    width = left + (n + 1) * (tw + gap) + gap + right
    bottom = 0
    if words:  # wrapped to the picture's width
        lines, line = [], ""
        for word in words.split():
            trial = f"{line} {word}".strip()
            if line and small.getlength(trial) > width - 12:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
        bottom = len(lines) * (text + 4) + 8
    canvas = Image.new("RGB", (width, top + 3 * (th + gap) + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, pictures) in enumerate(rows):
        y = top + r * (th + gap)
        draw.text((6, y + th // 2), name, fill="black", font=font, anchor="lm")
        for c, picture in enumerate([*pictures, last[r][1]]):
            x = left + c * (tw + gap) + (gap if c == n else 0)
            canvas.paste(Image.fromarray(picture).resize((tw, th), Image.Resampling.BILINEAR), (x, y))
        draw.text(
            (left + (n + 1) * (tw + gap) + gap + 6, y + th // 2), last[r][0], fill="black", font=font, anchor="lm"
        )
    for c in range(n):
        x = left + c * (tw + gap) + tw // 2
        draw.text(
            (x, top - 6),
            str(c + 1),
            fill=PAST_TRAINING if past_training(c + 1, trained) else "black",
            font=font,
            anchor="ms",
        )
    if words:
        for i, line in enumerate(lines):
            draw.text((6, top + 3 * (th + gap) + 4 + i * (text + 4)), line, fill="#444444", font=small, anchor="lt")
    return np.asarray(canvas)


def shown_token_views(entry: Entry, k: int, trained: int | None) -> tuple:
    """token_views as PNG files, written once per entry and k: coming back to a k costs nothing."""
    k = int(min(max(k, 1), len(entry)))
    shown = entry.derived.setdefault("shown", {})
    if k not in shown or not all(os.path.exists(path) for path in shown[k][:5]):
        *pictures, caption = token_views(entry, k, trained)
        shown[k] = (*(view_file(p) for p in pictures), caption)
    return shown[k]
