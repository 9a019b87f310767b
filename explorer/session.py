"""Sessions: what gr.State holds for each visitor, a Session (cache keys, the sources needed to
rebuild an evicted entry (small: the working-size image) and the edit history; never the big
arrays), and the model and cache entry it points at."""

from dataclasses import dataclass, field

import vle_core

from .cache import Entry, get_entry
from .edits import Edit, Edited, Transplant, apply, render_items, replay
from .errors import UserError
from .models import get_model


@dataclass(frozen=True, eq=False)  # eq=False: its sources hold arrays, which do not compare to one bool
class Session:
    """One visitor's image, its tokens and edits. Immutable: an event returns a new Session
    (dataclasses.replace), so a refused edit leaves the session it was given as it was.

    sources: cache key -> ("image", (H, W, 3) uint8 at working size) or ("tokens", Tokens): this
    session's own (under `key`) and the transplant donors it keeps; never changed in place.
    target_psnr: the PSNR an encode until a target stopped at (reached or not), else None."""

    checkpoint: str
    model_id: str
    key: str
    n: int
    note: str
    sources: dict[str, tuple] = field(default_factory=dict)
    history: tuple[Edit, ...] = ()
    target_psnr: float | None = None

    @classmethod
    def new(
        cls,
        checkpoint: str,
        model_id: str,
        key: str,
        source: tuple,
        n: int,
        note: str,
        target_psnr: float | None = None,
    ) -> "Session":
        return cls(checkpoint, model_id, key, n, note, {key: source}, (), target_psnr)

    @property
    def source(self) -> tuple:
        """("image", array) or ("tokens", Tokens): what this session encoded or loaded."""
        return self.sources[self.key]

    @property
    def donors(self) -> set[str]:
        """The cache keys of the donors its history transplants from."""
        return {op.donor for op in self.history if isinstance(op, Transplant)}


def require(state: Session | None) -> Session:
    if not state:
        raise UserError("Encode an image first: upload one or choose an example.")
    return state


def session(state: Session) -> tuple[vle_core.VLE, Entry]:
    """(model, this session's entry), re-fetched from the caches."""
    model_id, vle = get_model(state.checkpoint)
    if model_id != state.model_id:
        raise UserError(
            f"Checkpoint {state.checkpoint} has changed on disk since this image was encoded: encode it again."
        )
    return vle, get_entry(model_id, vle, state.source, state.n)[1]


def donor_entries(state: Session, vle: vle_core.VLE, history: tuple[Edit, ...]) -> dict:
    """Cache key -> Entry of every transplant donor the history uses."""
    keys = {op.donor for op in history if isinstance(op, Transplant)}
    return {key: get_entry(state.model_id, vle, state.sources[key], state.n)[1] for key in keys if key in state.sources}


def edited(state: Session, history: tuple[Edit, ...] | None = None) -> tuple[vle_core.VLE, Entry, Edited]:
    history = state.history if history is None else history
    vle, entry = session(state)
    try:
        items = replay(entry, history, donor_entries(state, vle, history))
    except ValueError as e:
        raise UserError(str(e)) from e
    contributions, masks = render_items(vle, state.model_id, state.key, entry, items)
    return vle, entry, apply(vle, entry, items, contributions, masks)
