"""Sessions: gr.State holds the cache keys, the sources needed to rebuild an evicted entry
(small: the working-size image) and the edit history; never the big arrays."""

import numpy as np

import vle_core
from vle_core import edit

from .cache import Entry, get_entry
from .edits import Edited, render_items, replay
from .errors import UserError
from .models import get_model


def new_state(checkpoint: str, model_id: str, key: str, source: tuple, n: int, note: str) -> dict:
    return {"checkpoint": checkpoint, "model_id": model_id, "key": key, "n": n, "note": note, "sources": {key: source}, "history": []}


def require(state: dict | None) -> dict:
    if not state:
        raise UserError("Encode an image first: upload one or choose an example.")
    return state


def session(state: dict) -> tuple[vle_core.VLE, Entry]:
    """(model, this session's entry), re-fetched from the caches."""
    model_id, vle = get_model(state["checkpoint"])
    if model_id != state["model_id"]:
        raise UserError(f"Checkpoint {state['checkpoint']} has changed on disk since this image was encoded: encode it again.")
    return vle, get_entry(model_id, vle, state["sources"][state["key"]], state["n"])[1]


def donor_entries(state: dict, vle: vle_core.VLE, history: list) -> dict:
    """Cache key -> Entry of every transplant donor the history uses."""
    keys = {op[1] for op in history if op[0] == "transplant"}
    return {key: get_entry(state["model_id"], vle, state["sources"][key], state["n"])[1] for key in keys if key in state["sources"]}


def edited(state: dict, history: list | None = None) -> tuple[vle_core.VLE, Entry, Edited]:
    history = state["history"] if history is None else history
    vle, entry = session(state)
    try:
        items = replay(entry, history, donor_entries(state, vle, history))
    except ValueError as e:
        raise UserError(str(e)) from e
    contributions, masks = render_items(vle, state["model_id"], state["key"], entry, items)
    whole = getattr(vle.config, "whole_tokens", 0)
    if whole and entry.masks is not None:  # a region token's edits take its object along (edit.carry_objects)
        return vle, entry, Edited(items, object_edits(entry, items, contributions, whole), masks, objects=True)
    return vle, entry, Edited(items, contributions, masks)


def object_edits(entry: Entry, items: list, contributions: np.ndarray, whole: int) -> np.ndarray:
    """The edited tokens' contributions with each moved or switched-off region token's object
    carried along or taken away (vle_core.edit.carry_objects). Tokens 1..whole code the whole
    image; scattered and transplanted tokens carry nothing (a scatter moves every token anyway)."""
    if all(it.on and (it.dx, it.dy) == (0.0, 0.0) for it in items):
        return contributions
    plain = [len(it.origin) == 2 and it.origin[0] == "token" for it in items]
    is_whole = [p and it.origin[1] < whole for p, it in zip(plain, items)]
    none = np.zeros(entry.image.shape[:2], np.float32)
    masks = np.stack([entry.masks[it.origin[1]].astype(np.float32) / 255 if p and not w else none for p, w, it in zip(plain, is_whole, items)])
    return edit.carry_objects(contributions, masks, is_whole, [it.on for it in items], [(it.dx, it.dy) for it in items])
