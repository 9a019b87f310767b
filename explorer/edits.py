"""Edits: the session keeps a list of operations; replaying them over the encoded tokens gives
the edited sequence. Each token is decoded where it was encoded (only tokens that differ from any
decoded before are decoded again), and `VLE.apply_edits` switches off and moves them: what the
page shows is what the library computes."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

import vle_core
from vle_core import EMPTY, Tokens, edit
from vle_core.figures import from_uint8, to_uint8

from . import settings
from .cache import Entry, _decoded
from .models import render_tokens


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
    vacated: str = "zeros"  # what a move leaves behind: "background" for a masked VLE's tokens (edit.translate)

    @property
    def identity(self) -> tuple:
        """What the token shows, placed: its decode and its offset."""
        return (*self.decoded_as, self.dx, self.dy)

    @property
    def decoded_as(self) -> tuple:
        """What its decode depends on: where it came from and its strength, not where it moves."""
        return (self.origin, self.strength)

    @property
    def unedited(self) -> bool:
        return len(self.origin) == 2 and self.origin[0] == "token" and self.strength == 1.0

    def decoded(self) -> Tokens:
        """The token to decode where it was encoded: its strength applied, not its move."""
        return self.token if self.strength == 1.0 else edit.scale(self.token, 0, self.strength)

    def final(self) -> Tokens:
        """The token as edited, its latent moved: what a tokens file holds."""
        token = self.decoded()
        if self.dx or self.dy:
            token = edit.translate(token, 0, self.dx, self.dy, vacated=self.vacated)
        return token


def replay(entry: Entry, history: list, donors: dict) -> list[Item]:
    """The edited sequence after `history` (ops as lists, indices 0-based). An impossible op raises
    ValueError with a message for the user. donors: cache key -> Entry of a transplant donor."""
    vacated = "zeros" if entry.masks is None else "background"  # a moved masked token leaves its background, not a seam
    items = [Item(entry.tokens[i], ("token", i), vacated=vacated) for i in range(len(entry))]

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
            if len(items) >= settings.MAX_EDITED_TOKENS:
                raise ValueError(f"At most {settings.MAX_EDITED_TOKENS} tokens, please.")
            donor = donors.get(donor_key)
            if donor is None:
                raise ValueError("The donor image is no longer available: choose it again.")
            if not 0 <= j < len(donor):
                raise ValueError(f"The donor has no token {j + 1}: its tokens are 1 to {len(donor)}.")
            moved = edit.transplant(Tokens.empty(entry.tokens.latents.shape[1], entry.tokens.image_size), donor.tokens, j)
            items.append(Item(moved, ("transplant", donor_key, j), vacated=vacated))
        elif kind == "remove":
            item(args[0], "remove").on = False
        elif kind == "scatter":
            H, W = entry.image.shape[:2]
            for it, (dx, dy) in zip(items, edit.scatter_offsets(len(items), (H, W), seed=int(args[0]))):
                it.dx, it.dy = float(np.clip(it.dx + dx, -W, W)), float(np.clip(it.dy + dy, -H, H))
        else:
            raise ValueError(f"Unknown edit {kind!r}.")
    return items


def render_items(vle: vle_core.VLE, model_id: str, key: str, entry: Entry, items: list[Item]) -> tuple[np.ndarray, np.ndarray | None]:
    """(contributions (m, H, W, 3) float32, masks (m, H, W) uint8 or None) of every item, on or
    off, where it was encoded; unedited tokens come from the entry (cache key `key`), others from
    earlier decodes or one batched decode."""
    H, W = entry.image.shape[:2]
    found, missing = {}, []
    for i, it in enumerate(items):
        if it.unedited:
            index = it.origin[1]
            found[i] = (entry.contributions[index], None if entry.masks is None else entry.masks[index])
        elif (hit := _decoded.get((model_id, key, it.decoded_as))) is not None:
            found[i] = hit
        else:
            missing.append(i)
    if missing:
        rendering = render_tokens(vle, Tokens.cat([items[i].decoded() for i in missing]))
        for row, i in enumerate(missing):
            value = (rendering.contributions[row].astype(np.float16), None if rendering.masks is None else to_uint8(rendering.masks[row]))
            _decoded.put((model_id, key, items[i].decoded_as), value, value[0].nbytes + (0 if value[1] is None else value[1].nbytes))
            found[i] = value
    contributions = np.stack([found[i][0] for i in range(len(items))]).astype(np.float32) if items else np.zeros((0, H, W, 3), np.float32)
    masks = None if entry.masks is None or not items else np.stack([found[i][1] for i in range(len(items))])
    return contributions, masks


def describe(history: list) -> list[str]:
    """Each op of the history in words. A move op holds the token's offset from where it was
    encoded; the log says the step the user made, and the offset only when it differs."""
    offsets, words = {}, []
    for op in history:
        kind = op[0]
        if kind == "switch":
            words.append(f"tokens on: {', '.join(str(i + 1) for i in sorted(op[1])) or 'none'}")
        elif kind == "solo":
            words.append(f"solo token {op[1] + 1}")
        elif kind == "strength":
            words.append(f"token {op[1] + 1} at strength {op[2]:g}")
        elif kind == "move":
            x0, y0 = offsets.get(op[1], (0, 0))
            offsets[op[1]] = (op[2], op[3])
            text = f"token {op[1] + 1} moved by ({op[2] - x0:+g}, {op[3] - y0:+g}) px"
            words.append(text if (x0, y0) == (0, 0) else text + f", to ({op[2]:+g}, {op[3]:+g}) from where it was encoded")
        elif kind == "remove":
            words.append(f"token {op[1] + 1} removed")
        elif kind == "transplant":
            words.append(f"transplanted donor token {op[2] + 1}")
        else:
            words.append(f"scattered all tokens (seed {op[1]})")
    return words


@dataclass
class Edited:
    """The edited sequence and what it shows.

    contributions, masks: every item decoded where it was encoded, (m, H, W, 3) float32 and
    (m, H, W) uint8 or None; picture: (H, W, 3) float32 in [0, 1], `VLE.apply_edits` of them."""

    items: list[Item]
    contributions: np.ndarray
    masks: np.ndarray | None
    picture: np.ndarray

    @property
    def on(self) -> list[int]:
        return [i for i, it in enumerate(self.items) if it.on]

    @cached_property
    def image(self) -> np.ndarray:
        return to_uint8(self.picture)

    def placed(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Item i's contribution and mask where its move puts them (whole pixels)."""
        dx, dy = round(self.items[i].dx), round(self.items[i].dy)
        mask = None if self.masks is None else edit.shift_pixels(self.masks[i], dx, dy)
        return edit.shift_pixels(self.contributions[i], dx, dy), mask

    def tokens(self) -> Tokens:
        return (
            Tokens.cat([self.items[i].final() for i in self.on])
            if self.on
            else Tokens.empty(self.items[0].token.latents.shape[1], self.items[0].token.image_size)
        )


def apply(vle: vle_core.VLE, entry: Entry, items: list[Item], contributions: np.ndarray, masks: np.ndarray | None) -> Edited:
    """The edited picture: the items' decodes as a Rendering, through `VLE.apply_edits`."""
    H, W = entry.image.shape[:2]
    if not items:
        return Edited(items, contributions, masks, np.full((H, W, 3), EMPTY, np.float32))
    tokens = Tokens.cat([it.decoded() for it in items])
    rendering = vle_core.Rendering(tokens, contributions, contributions[:0], None if masks is None else from_uint8(masks))
    moves = {i: (it.dx, it.dy) for i, it in enumerate(items) if it.dx or it.dy}
    picture = vle.apply_edits(rendering, off=[i for i, it in enumerate(items) if not it.on], moves=moves)
    return Edited(items, contributions, masks, picture)
