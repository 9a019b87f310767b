"""The Edit tab: switch, solo, remove, scale, move, scatter and transplant tokens, undo and reset.
Every handler appends one op to the history and shows the replayed result (edits.py). The
selected token is 1-based in the page; 0 is none."""

import gradio as gr
import numpy as np

from vle_core import metrics

from . import settings
from .cache import Entry, _weights, get_entry
from .edits import Edited, describe
from .errors import UserError
from .images import fit_working_size, picture_xy, read_image, view_file
from .session import edited, require, session
from .views import entry_overlay, highlight, label_overlay, token_weights


def item_weights(state: dict, result: Edited, rows: list[int]) -> np.ndarray:
    """token_weights of these items of the edited sequence, (len(rows), H, W). Each token's map
    depends on that token alone, so it is kept per token (as its decode is): an edit changes one
    token, and only its map is computed again (a move at 256 px: 44 ms instead of 55)."""
    maps = []
    for i in rows:
        key = (state["model_id"], state["key"], result.items[i].identity)
        weights = _weights.get(key)
        if weights is None:
            contribution, mask = result.placed(i)
            weights = token_weights(contribution[None], None if mask is None else mask[None], result.items[i].token.stage.numpy())[0]
            _weights.put(key, weights, weights.nbytes)
        maps.append(weights)
    return np.stack(maps)


def edit_overlay(state: dict, result: Edited, selected: int) -> np.ndarray:
    """The edited tokens' regions over the edited image, the selected token's lit."""
    on = result.on
    picture = result.image
    if not on:
        return picture
    labels = item_weights(state, result, on).argmax(0)
    overlay = label_overlay(picture, labels, [i + 1 for i in on])
    return highlight(overlay, labels, on.index(selected)) if selected in on else overlay


def first_selection(vle, entry: Entry) -> int:
    """The token the tab selects at first (0-based, -1 for none): a masked VLE's first region
    token, never a whole-image token, which a click on the picture would move and wreck it."""
    regions = np.flatnonzero(vle.region_tokens(entry.tokens))
    return int(regions[0]) if len(regions) else -1


OBJECTS_NOTE = (
    " · a region token is an object: removed or moved, it takes the picture under its mask with it, and a"
    " classical fill (no model) continues the surroundings where it was"
)


def edit_views(state: dict, entry: Entry, result: Edited, selected: int) -> tuple:
    """(edited image, overlay, tokens-on choices, token picker, strength, dx, dy, log); selected
    is 0-based, -1 for none."""
    m, (H, W) = len(result.items), entry.image.shape[:2]
    selected = min(max(selected, -1), m - 1)
    it = result.items[selected] if selected >= 0 else None
    choices = [(f"{i + 1}" + (" (transplant)" if item.origin[0] == "transplant" else ""), i + 1) for i, item in enumerate(result.items)]
    history = state["history"]
    log = f"**{len(result.on)} of {m} tokens on**"
    if history:
        psnr = metrics.psnr(entry.image, result.image)
        against = "the source" if entry.source == "image" else "the loaded tokens"
        log += f" · PSNR against {against} {psnr:.1f} dB · {len(history)} edit{'s' * (len(history) > 1)}: " + "; ".join(describe(history)[-6:])
        log += " …" if len(history) > 6 else ""
    else:
        log += " · no edits yet"
    if entry.masks is not None:
        log += OBJECTS_NOTE
    return (
        view_file(result.image),
        view_file(edit_overlay(state, result, selected)),
        gr.update(choices=choices, value=[i + 1 for i in result.on]),
        gr.update(maximum=max(m, 2), value=selected + 1),
        1.0 if it is None else it.strength,
        gr.update(value=0 if it is None else it.dx, minimum=-W, maximum=W),
        gr.update(value=0 if it is None else it.dy, minimum=-H, maximum=H),
        log,
    )


def selected_item(token: float, verb: str) -> int:
    """The 0-based index of the 1-based `token`, refused with a message if none is selected.
    An index past the tokens is refused by the replay (edits.replay), which names the range."""
    i = int(token) - 1
    if i < 0:
        raise UserError(f"Select a token to {verb} first: click its region in the picture on the right.")
    return i


def apply_edit(state: dict | None, op: list, selected: int) -> tuple:
    """Append an op (refused with a clear message if impossible) and show the result."""
    state = require(state)
    if len(state["history"]) >= settings.MAX_EDITS:
        raise UserError(f"This session has {settings.MAX_EDITS} edits, the most it keeps: undo some, or reset.")
    history = state["history"] + [op]
    vle, entry, result = edited(state, history)
    state = {**state, "history": history}
    return (state, *edit_views(state, entry, result, selected))


def on_pick_edit_token(token: float, state: dict | None):
    """Show the picked token's strength and offset, and light its region."""
    if not state:
        return 1.0, 0, 0, None
    _, entry, result = edited(state)
    i = int(min(max(int(token), 0), len(result.items))) - 1
    if i < 0:
        return 1.0, 0, 0, view_file(edit_overlay(state, result, -1))
    it = result.items[i]
    return it.strength, it.dx, it.dy, view_file(edit_overlay(state, result, i))


def on_select_edit_token(state: dict | None, evt: gr.SelectData):
    """A click on the edit overlay picks the switched-on token that is largest there."""
    state = require(state)
    _, _, result = edited(state)
    on = result.on
    if not on:
        raise UserError("All tokens are switched off.")
    weights = item_weights(state, result, on)
    x, y = picture_xy(evt.index, weights.shape[1:])
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
    i = selected_item(token, "solo")
    return apply_edit(state, ["solo", i], i)


def on_remove(token: float, state: dict | None):
    """Switch this (1-based) token off: a region token takes its object away."""
    i = selected_item(token, "remove")
    return apply_edit(state, ["remove", i], i)


def on_strength(token: float, strength: float, state: dict | None):
    """Scale the token's addition: 0 silences it, 1 is as encoded, 2 doubles it."""
    i = selected_item(token, "change the strength of")
    return apply_edit(state, ["strength", i, round(float(strength), 4)], i)


def on_move(token: float, dx: float, dy: float, state: dict | None):
    """Relocate the token to (dx, dy) px from where it was encoded (right and down positive)."""
    i = selected_item(token, "move")
    return apply_edit(state, ["move", i, round(float(dx)), round(float(dy))], i)


def on_move_to(token: float, state: dict | None, evt: gr.SelectData):
    """A click on the edited image moves the token so that its centre lands there."""
    state = require(state)
    _, entry, result = edited(state)
    i = selected_item(token, "move")
    if i >= len(result.items):
        raise UserError(f"There is no token {i + 1} to move: the tokens are 1 to {len(result.items)}.")
    it = result.items[i]
    if not it.on:
        raise UserError(f"Token {i + 1} is switched off: switch it on to move it.")
    weights = item_weights(state, result, [i])[0]
    total = float(weights.sum())
    H, W = weights.shape
    if total > 0:
        ys, xs = np.mgrid[0:H, 0:W]
        cy, cx = float((weights * ys).sum() / total), float((weights * xs).sum() / total)
    else:
        cy, cx = H / 2, W / 2
    x, y = picture_xy(evt.index, (H, W))
    dx = int(np.clip(round(it.dx + x - cx), -W, W))
    dy = int(np.clip(round(it.dy + y - cy), -H, H))
    return apply_edit(state, ["move", i, dx, dy], i)


def _donor(donor_image, state: dict) -> tuple[str, dict, Entry]:
    """(cache key, state that knows the donor, its entry): the donor image scaled to this image's
    long side and encoded by the same checkpoint into as many tokens."""
    if donor_image is None:
        raise UserError("Choose a donor image first.")
    vle, entry = session(state)
    source = ("image", fit_working_size(read_image(donor_image), max(entry.image.shape[:2]))[0])
    key, entry, _ = get_entry(state["model_id"], vle, source, state["n"])
    # The state keeps the sources its edits use (the image, donors transplanted from) and this donor:
    # a donor tried and not used is forgotten; their number is bounded, as each is a picture.
    used = {state["key"]} | {op[1] for op in state["history"] if op[0] == "transplant"}
    sources = {k: v for k, v in state["sources"].items() if k in used} | {key: source}
    if len(sources) > 1 + settings.MAX_DONORS:
        raise UserError(f"This session's edits use {settings.MAX_DONORS} donor images, the most it keeps: transplant from one of them, or reset.")
    return key, {**state, "sources": sources}, entry


def on_donor(donor_image, donor_token: float, state: dict | None):
    """Encode the donor image (cached) and show its tokens, the chosen one lit. A bad donor file
    is one warning, and no view."""
    if donor_image is None or not state:
        return None, gr.update()
    try:
        _, _, entry = _donor(donor_image, state)
    except UserError as e:
        gr.Warning(e.message)
        return None, gr.update()
    labels, overlay = entry_overlay(entry)
    j = int(min(max(int(donor_token), 1), len(entry)))
    return view_file(highlight(overlay, labels, j - 1)), gr.update(maximum=max(len(entry), 2), value=j)


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
    vle, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, first_selection(vle, entry)))
