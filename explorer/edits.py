"""Edits: the session keeps a history of edit operations (Switch, Solo, Remove, Strength, Move,
Transplant, Scatter); replaying them over the encoded tokens gives the edited sequence. Each
token is decoded where it was encoded (only tokens that differ from any decoded before are
decoded again), and `VLE.apply_edits` switches off and moves them: what the page shows is what
the library computes."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

import vle_core
from vle_core import EMPTY, Tokens, edit
from vle_core.figures import from_uint8, to_uint8

from . import settings
from .cache import Entry, token_decodes
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


@dataclass(frozen=True)
class Switch:
    """Leave these tokens on (0-based, sorted) and switch every other one off."""

    on: tuple[int, ...]


@dataclass(frozen=True)
class Solo:
    """Leave only this token on."""

    token: int


@dataclass(frozen=True)
class Remove:
    """Switch this token off: a region token takes its object away (VLE.apply_edits)."""

    token: int


@dataclass(frozen=True)
class Strength:
    """Scale this token's addition: 0 silences it, 1 is as encoded (edit.scale)."""

    token: int
    strength: float


@dataclass(frozen=True)
class Move:
    """Place this token at (dx, dy) px from where it was encoded, right and down positive (edit.translate)."""

    token: int
    dx: float
    dy: float


@dataclass(frozen=True)
class Transplant:
    """Append token `token` of a donor image, encoded by the same checkpoint, in its place there."""

    donor: str  # the donor's cache key: Session.sources holds its image
    token: int


@dataclass(frozen=True)
class Scatter:
    """Move every token by its own random offset (edit.scatter_offsets), added to where it is."""

    seed: int


Edit = Switch | Solo | Remove | Strength | Move | Transplant | Scatter


def replay(entry: Entry, history: tuple[Edit, ...], donors: dict) -> list[Item]:
    """The edited sequence after `history` (token indices 0-based). An impossible edit raises
    ValueError with a message for the user. donors: cache key -> Entry of a transplant donor."""
    vacated = "zeros" if entry.masks is None else "background"  # a moved masked token leaves its background, not a seam
    items = [Item(entry.tokens[i], ("token", i), vacated=vacated) for i in range(len(entry))]
    H, W = entry.image.shape[:2]

    def item(i, verb: str, must_be_on: bool = True) -> Item:
        if not (isinstance(i, int) and 0 <= i < len(items)):
            number = i + 1 if isinstance(i, int) else i
            raise ValueError(f"There is no token {number} to {verb}: the tokens are 1 to {len(items)}.")
        if must_be_on and not items[i].on:
            raise ValueError(f"Token {i + 1} is switched off: switch it on to {verb} it.")
        return items[i]

    for op in history:
        match op:
            case Switch(on):
                for i in on:
                    item(i, "switch on", must_be_on=False)
                for i, it in enumerate(items):
                    it.on = i in on
            case Solo(token):
                item(token, "solo", must_be_on=False)
                for i, it in enumerate(items):
                    it.on = i == token
            case Remove(token):
                item(token, "remove").on = False
            case Strength(token, strength):
                if not 0 <= strength <= 10:
                    raise ValueError(f"A strength of {strength} is out of range (0 to 10).")
                item(token, "change the strength of").strength = float(strength)
            case Move(token, dx, dy):
                it = item(token, "move")
                if abs(dx) > W or abs(dy) > H:
                    raise ValueError(f"A move of ({dx:+g}, {dy:+g}) px leaves the {W}×{H} image.")
                it.dx, it.dy = float(dx), float(dy)
            case Transplant(donor_key, j):
                if len(items) >= settings.MAX_EDITED_TOKENS:
                    raise ValueError(f"At most {settings.MAX_EDITED_TOKENS} tokens, please.")
                donor = donors.get(donor_key)
                if donor is None:
                    raise ValueError("The donor image is no longer available: choose it again.")
                if not 0 <= j < len(donor):
                    raise ValueError(f"The donor has no token {j + 1}: its tokens are 1 to {len(donor)}.")
                empty = Tokens.empty(entry.tokens.latents.shape[1], entry.tokens.image_size)
                items.append(
                    Item(edit.transplant(empty, donor.tokens, j), ("transplant", donor_key, j), vacated=vacated)
                )
            case Scatter(seed):
                for it, (dx, dy) in zip(items, edit.scatter_offsets(len(items), (H, W), seed=int(seed))):
                    it.dx, it.dy = float(np.clip(it.dx + dx, -W, W)), float(np.clip(it.dy + dy, -H, H))
            case _:
                raise ValueError(f"Unknown edit {op!r}.")
    return items


def render_items(
    vle: vle_core.VLE, model_id: str, key: str, entry: Entry, items: list[Item]
) -> tuple[np.ndarray, np.ndarray | None]:
    """(contributions (m, H, W, 3) float32, masks (m, H, W) uint8 or None) of every item, on or
    off, where it was encoded; unedited tokens come from the entry (cache key `key`), others from
    earlier decodes or one batched decode."""
    H, W = entry.image.shape[:2]
    found, missing = {}, []
    for i, it in enumerate(items):
        if it.unedited:
            index = it.origin[1]
            found[i] = (entry.contributions[index], None if entry.masks is None else entry.masks[index])
        elif (hit := token_decodes.get((model_id, key, it.decoded_as))) is not None:
            found[i] = hit
        else:
            missing.append(i)
    if missing:
        rendering = render_tokens(vle, Tokens.cat([items[i].decoded() for i in missing]))
        for row, i in enumerate(missing):
            value = (
                rendering.contributions[row].astype(np.float16),
                None if rendering.masks is None else to_uint8(rendering.masks[row]),
            )
            token_decodes.put(
                (model_id, key, items[i].decoded_as),
                value,
                value[0].nbytes + (0 if value[1] is None else value[1].nbytes),
            )
            found[i] = value
    contributions = (
        np.stack([found[i][0] for i in range(len(items))]).astype(np.float32)
        if items
        else np.zeros((0, H, W, 3), np.float32)
    )
    masks = None if entry.masks is None or not items else np.stack([found[i][1] for i in range(len(items))])
    return contributions, masks


def describe(history: tuple[Edit, ...]) -> list[str]:
    """Each edit of the history in words. A Move holds the token's offset from where it was
    encoded; the log says the step the user made, and the offset only when it differs."""
    offsets, words = {}, []
    for op in history:
        match op:
            case Switch(on):
                words.append(f"tokens on: {', '.join(str(i + 1) for i in sorted(on)) or 'none'}")
            case Solo(token):
                words.append(f"solo token {token + 1}")
            case Strength(token, strength):
                words.append(f"token {token + 1} at strength {strength:g}")
            case Move(token, dx, dy):
                x0, y0 = offsets.get(token, (0, 0))
                offsets[token] = (dx, dy)
                text = f"token {token + 1} moved by ({dx - x0:+g}, {dy - y0:+g}) px"
                words.append(
                    text if (x0, y0) == (0, 0) else text + f", to ({dx:+g}, {dy:+g}) from where it was encoded"
                )
            case Remove(token):
                words.append(f"token {token + 1} removed")
            case Transplant(_, token):
                words.append(f"transplanted donor token {token + 1}")
            case Scatter(seed):
                words.append(f"scattered all tokens (seed {seed})")
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


def apply(
    vle: vle_core.VLE, entry: Entry, items: list[Item], contributions: np.ndarray, masks: np.ndarray | None
) -> Edited:
    """The edited picture: the items' decodes as a Rendering, through `VLE.apply_edits`."""
    H, W = entry.image.shape[:2]
    if not items:
        return Edited(items, contributions, masks, np.full((H, W, 3), EMPTY, np.float32))
    tokens = Tokens.cat([it.decoded() for it in items])
    rendering = vle_core.Rendering(
        tokens, contributions, contributions[:0], None if masks is None else from_uint8(masks)
    )
    moves = {i: (it.dx, it.dy) for i, it in enumerate(items) if it.dx or it.dy}
    picture = vle.apply_edits(rendering, off=[i for i, it in enumerate(items) if not it.on], moves=moves)
    return Edited(items, contributions, masks, picture)
