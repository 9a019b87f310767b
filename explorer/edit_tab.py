"""The Edit tab: switch, solo, remove, scale, move, scatter and transplant tokens, undo and reset.
Every handler appends one edit to the session's history and shows the replayed result (edits.py). The
selected token is 1-based in the page; 0 is none."""

from dataclasses import replace

import gradio as gr
import numpy as np

from . import settings
from .cache import Entry, get_entry
from .edits import Edit, Move, Remove, Scatter, Solo, Strength, Switch, Transplant
from .errors import UserError
from .images import fit_working_size, picture_xy, read_image, view_file
from .pages import edit_overlay, edit_views, first_selection, item_weights
from .session import Session, edited, require, session
from .views import entry_overlay, highlight


def selected_item(token: float, verb: str) -> int:
    """The 0-based index of the 1-based `token`, refused with a message if none is selected.
    An index past the tokens is refused by the replay (edits.replay), which names the range."""
    i = int(token) - 1
    if i < 0:
        raise UserError(f"Select a token to {verb} first: click its region in the picture on the right.")
    return i


def apply_edit(state: Session | None, op: Edit, selected: int) -> tuple:
    """Append an edit (refused with a clear message if impossible) and show the result."""
    state = require(state)
    if len(state.history) >= settings.MAX_EDITS:
        raise UserError(f"This session has {settings.MAX_EDITS} edits, the most it keeps: undo some, or reset.")
    history = (*state.history, op)
    vle, entry, result = edited(state, history)
    state = replace(state, history=history)
    return (state, *edit_views(state, entry, result, selected))


def on_pick_edit_token(token: float, state: Session | None):
    """Show the picked token's strength and offset, and light its region."""
    if not state:
        return 1.0, 0, 0, None
    _, entry, result = edited(state)
    i = int(min(max(int(token), 0), len(result.items))) - 1
    if i < 0:
        return 1.0, 0, 0, view_file(edit_overlay(state, result, -1))
    it = result.items[i]
    return it.strength, it.dx, it.dy, view_file(edit_overlay(state, result, i))


def on_select_edit_token(state: Session | None, evt: gr.SelectData):
    """A click on the edit overlay picks the switched-on token that is largest there."""
    state = require(state)
    _, _, result = edited(state)
    on = result.on
    if not on:
        raise UserError("All tokens are switched off.")
    weights = item_weights(state, result, on)
    x, y = picture_xy(evt.index, weights.shape[1:])
    return on[int(weights[:, y, x].argmax())] + 1


def on_switch(tokens_on: list, state: Session | None, token: float = 1):
    """Switch tokens on and off: tokens_on lists the (1-based) tokens to keep on."""
    return apply_edit(state, Switch(tuple(sorted(int(i) - 1 for i in tokens_on or []))), int(token) - 1)


def on_all_on(state: Session | None, token: float = 1):
    state = require(state)
    m = len(edited(state)[2].items)
    return apply_edit(state, Switch(tuple(range(m))), int(token) - 1)


def on_solo(token: float, state: Session | None):
    """Keep only this (1-based) token on."""
    i = selected_item(token, "solo")
    return apply_edit(state, Solo(i), i)


def on_remove(token: float, state: Session | None):
    """Switch this (1-based) token off: a region token takes its object away."""
    i = selected_item(token, "remove")
    return apply_edit(state, Remove(i), i)


def on_strength(token: float, strength: float, state: Session | None):
    """Scale the token's addition: 0 silences it, 1 is as encoded, 2 doubles it."""
    i = selected_item(token, "change the strength of")
    return apply_edit(state, Strength(i, round(float(strength), 4)), i)


def on_move(token: float, dx: float, dy: float, state: Session | None):
    """Relocate the token to (dx, dy) px from where it was encoded (right and down positive)."""
    i = selected_item(token, "move")
    return apply_edit(state, Move(i, round(float(dx)), round(float(dy))), i)


def on_move_to(token: float, state: Session | None, evt: gr.SelectData):
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
    return apply_edit(state, Move(i, dx, dy), i)


def _donor(donor_image, state: Session) -> tuple[str, Session, Entry]:
    """(cache key, state that knows the donor, its entry): the donor image scaled to this image's
    long side and encoded by the same checkpoint into as many tokens."""
    if donor_image is None:
        raise UserError("Choose a donor image first.")
    vle, entry = session(state)
    source = ("image", fit_working_size(read_image(donor_image), max(entry.image.shape[:2]))[0])
    key, entry, _ = get_entry(state.model_id, vle, source, state.n)
    # The state keeps the sources its edits use (the image, donors transplanted from) and this donor:
    # a donor tried and not used is forgotten; their number is bounded, as each is a picture.
    used = {state.key} | state.donors
    sources = {k: v for k, v in state.sources.items() if k in used} | {key: source}
    if len(sources) > 1 + settings.MAX_DONORS:
        raise UserError(
            f"This session's edits use {settings.MAX_DONORS} donor images, the most it keeps:"
            " transplant from one of them, or reset."
        )
    return key, replace(state, sources=sources), entry


def on_donor(donor_image, donor_token: float, state: Session | None):
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


def on_transplant(
    donor_image,
    donor_token: float,
    state: Session | None,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """Append token donor_token of a second image (encoded by the same checkpoint), in place."""
    state = require(state)
    progress(0.1, desc="Encoding the donor image")
    key, state, _ = _donor(donor_image, state)
    m = len(edited(state)[2].items)
    return apply_edit(state, Transplant(key, int(donor_token) - 1), m)


def on_scatter(seed: float, state: Session | None, token: float = 1):
    """Move every token by its own random offset (Section 4's proposed experiment)."""
    return apply_edit(state, Scatter(int(seed or 0)), int(token) - 1)


def on_undo(state: Session | None, token: float = 1):
    state = require(state)
    if not state.history:
        gr.Info("Nothing to undo.")
    state = replace(state, history=state.history[:-1])
    _, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, int(token) - 1))


def on_reset(state: Session | None, token: float = 1):
    state = replace(require(state), history=())
    vle, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, first_selection(vle, entry)))
