"""What the events of more than one tab show: a new session's outputs (an encode, a tokens file
loaded), the same for a refused event (in_page), the Edit tab's views (after each edit and each
new session) and why Compare cannot run. The tabs import this module, never each other."""

import gradio as gr
import numpy as np

import vle_core
from vle_core import metrics

from .cache import Entry, token_regions
from .edits import Edited, describe
from .errors import BadImage, UserError
from .images import view_file
from .session import Session, session
from .views import count, highlight, label_overlay, shown_token_views, token_weights


def session_outputs(state: Session, vle: vle_core.VLE, entry: Entry, info: str) -> tuple:
    """What a fresh session shows first: the Tokens tab at k = n (the strip and the Edit tab
    follow from on_details, so that the first views come as soon as possible)."""
    n, trained = len(entry), vle.trained_tokens
    label = "First k tokens" + (
        f" (the checkpoint was trained with up to {count(trained)}; past that is extrapolation)" if trained else ""
    )
    mask_label = "Token k's mask" if entry.masks is not None else "Where token k acts"
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


def cannot_compare(state: Session | None) -> str:
    """Why Compare cannot run on this session, or "" where it can."""
    if not state:
        return "Encode an image first: Compare runs both checkpoints on it."
    if state.source[0] != "image":
        return (
            "Compare needs a source image to encode with both checkpoints; these tokens were loaded from a file."
            " Upload or choose an image to compare on it."
        )
    return ""


def in_page(handler, args: tuple, image, state: Session | None = None) -> tuple:
    """A handler's session outputs as the page shows them, with the Image panel (`image`: what it
    holds now) and the Compare tab. `state`: the session before this event.

    A user error (a bad file, a checkpoint that does not load) does not fail the event, which would
    badge every view "Error": the message shows where the user is looking, as a toast and above
    the views (the caption), and in the info line. The session goes on as it was, its views with
    it, and a bad image file is replaced in the Image panel by the session's own image; with no
    session yet, the views stay empty. The API's endpoints raise instead, so a client gets the
    message. The Image panel gets a value, never an update: gradio rebuilds a component from an
    update as a plain gr.Image, without image_input's own preprocess."""
    try:
        outputs = handler(*args)
    except UserError as e:
        gr.Warning(e.message)
        return refused(e, image, state)
    state = outputs[0]
    if state is None:  # the image was cleared
        return (*outputs, image, None, None, None, None, None, "", gr.update(), gr.update())
    n = state.n
    if state.source[0] == "tokens":
        # loaded tokens: the Image panel shows what they decode to
        image = view_file(session(state)[1].image, enlarge=False, exact=True)
    compare_a = gr.update(value=state.checkpoint)  # Compare starts from the checkpoint this image was encoded with
    compare = (None,) * 5  # Compare's pictures and plot, of the image before
    return (*outputs, image, *compare, cannot_compare(state), gr.update(maximum=max(n, 2), value=n), compare_a)


def refused(error: UserError, image, state: Session | None) -> tuple:
    """in_page's outputs for a user error: the message, and the session (if any) kept as it was."""
    message = f"⚠️ **{error.message}**"
    if isinstance(error, BadImage):
        image = None
    if not state:
        return (*empty_outputs(message), image, None, None, None, None, None, "", gr.update(), gr.update())
    try:
        vle, entry = session(state)
    except UserError:  # the session's own checkpoint is gone: nothing left to keep
        return (*empty_outputs(message), image, None, None, None, None, None, "", gr.update(), gr.update())
    if isinstance(error, BadImage) and state.source[0] == "image":
        image = view_file(entry.image, enlarge=False, exact=True)  # back to the image the views show
    keep = gr.update()
    caption = f"{message}  \nStill showing the previous image's tokens."
    info = f"{message} · still showing: {state.note}"
    # The slider and the five views, the caption, the donor slider, the Image panel, the Compare tab.
    return (state, info, *[keep] * 6, caption, keep, image, *[keep] * 8)


def item_weights(state: Session, result: Edited, rows: list[int]) -> np.ndarray:
    """token_weights of these items of the edited sequence, (len(rows), H, W). Each token's map
    depends on that token alone, so it is kept per token (as its decode is): an edit changes one
    token, and only its map is computed again (a move at 256 px: 44 ms instead of 55)."""
    maps = []
    for i in rows:
        key = (state.model_id, state.key, result.items[i].identity)
        weights = token_regions.get(key)
        if weights is None:
            contribution, mask = result.placed(i)
            weights = token_weights(
                contribution[None], None if mask is None else mask[None], result.items[i].token.stage.numpy()
            )[0]
            token_regions.put(key, weights, weights.nbytes)
        maps.append(weights)
    return np.stack(maps)


def edit_overlay(state: Session, result: Edited, selected: int) -> np.ndarray:
    """The edited tokens' regions over the edited image, the selected token's lit."""
    on = result.on
    picture = result.image
    if not on:
        return picture
    labels = item_weights(state, result, on).argmax(0)
    overlay = label_overlay(picture, labels, [i + 1 for i in on])
    return highlight(overlay, labels, on.index(selected)) if selected in on else overlay


def first_selection(vle, entry: Entry) -> int:
    """The token the Edit tab selects at first (0-based, -1 for none): a masked VLE's first region
    token, never a whole-image token, which a click on the picture would move and wreck it."""
    regions = np.flatnonzero(vle.region_tokens(entry.tokens))
    return int(regions[0]) if len(regions) else -1


OBJECTS_NOTE = (
    " · a region token is an object: removed or moved, it takes the picture under its mask with it, and a"
    " classical fill (no model) continues the surroundings where it was"
)


def edit_views(state: Session, entry: Entry, result: Edited, selected: int) -> tuple:
    """(edited image, overlay, tokens-on choices, token picker, strength, dx, dy, log); selected
    is 0-based, -1 for none."""
    m, (H, W) = len(result.items), entry.image.shape[:2]
    selected = min(max(selected, -1), m - 1)
    it = result.items[selected] if selected >= 0 else None
    choices = [
        (f"{i + 1}" + (" (transplant)" if item.origin[0] == "transplant" else ""), i + 1)
        for i, item in enumerate(result.items)
    ]
    history = state.history
    log = f"**{len(result.on)} of {m} tokens on**"
    if history:
        psnr = metrics.psnr(entry.image, result.image)
        against = "the source" if entry.source == "image" else "the loaded tokens"
        edits = f"{len(history)} edit{'s' * (len(history) > 1)}: " + "; ".join(describe(history)[-6:])
        log += f" · PSNR against {against} {psnr:.1f} dB · {edits}"
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
