"""Sessions: gr.State holds the cache keys, the sources needed to rebuild an evicted entry
(small: the working-size image) and the edit history; never the big arrays."""

import vle_core

from .cache import Entry, get_entry
from .edits import Edited, apply, render_items, replay
from .errors import UserError
from .models import get_model


def new_state(checkpoint: str, model_id: str, key: str, source: tuple, n: int, note: str, target_psnr: float | None = None) -> dict:
    """target_psnr: the PSNR an encode until a target stopped at (reached or not), else None."""
    return {
        "checkpoint": checkpoint,
        "model_id": model_id,
        "key": key,
        "n": n,
        "note": note,
        "sources": {key: source},
        "history": [],
        "target_psnr": target_psnr,
    }


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
    return vle, entry, apply(vle, entry, items, contributions, masks)
