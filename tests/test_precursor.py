"""The precursor S: a matching-pursuit seed grown into the region of similar residual colour."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import vle_core
from vle_core import metrics, nets
from vle_core.config import config_from_dict
from vle_core.loop import normalise
from vle_core.nets import Precursor
from vle_core.scenes import TRAIN_SEED, SceneSet

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.fixture
def precursor() -> Precursor:
    return Precursor(vle_core.preset("masked-tiny"))


def grown_by_steps(precursor, residual, taken):
    """The same region grown one 4-neighbour step at a time until nothing changes: the plain
    definition of what the scans compute (max over paths through similar neighbours of the
    product of how free each pixel is)."""
    B, _, H, W = residual.shape
    score = torch.log(residual.pow(2).sum(1, keepdim=True) + nets.ENERGY_FLOOR) - nets.TAKEN_PENALTY * taken
    m = torch.zeros(B, H * W)
    m[torch.arange(B), score.flatten(1).argmax(1)] = 1
    m = m.view(B, 1, H, W)
    free = 1 - taken
    while True:
        grown = m.clone()
        for dim in (2, 3):
            affinity = (residual.diff(dim=dim).pow(2).sum(1, keepdim=True) < precursor.sigma**2).float()
            n = m.shape[dim]
            here, there = m.narrow(dim, 1, n - 1), m.narrow(dim, 0, n - 1)
            grown.narrow(dim, 1, n - 1).copy_(
                torch.maximum(grown.narrow(dim, 1, n - 1), there * affinity * free.narrow(dim, 1, n - 1))
            )
            grown.narrow(dim, 0, n - 1).copy_(
                torch.maximum(grown.narrow(dim, 0, n - 1), here * affinity * free.narrow(dim, 0, n - 1))
            )
        if (grown - m).abs().max() < 1e-7:
            return m * free
        m = grown


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scans_grow_the_same_region_as_single_steps(precursor, seed):
    generator = torch.Generator().manual_seed(seed)
    residual = normalise(torch.randn(2, 3, 12, 15, generator=generator).cumsum(2))[0]
    taken = (torch.rand(2, 1, 12, 15, generator=generator) > 0.8).float() * 0.9
    torch.testing.assert_close(
        precursor(residual, taken), grown_by_steps(precursor, residual, taken), atol=1e-4, rtol=1e-3
    )


def test_a_region_grows_as_far_as_max_rounds_reach(precursor):
    """A staircase corridor: each round of growing climbs one stair (a row, then a column), so
    S's region ends after MAX_ROUNDS stairs, however far the corridor goes."""
    n = nets.MAX_ROUNDS + 8
    residual = torch.zeros(1, 3, n + 1, n + 1)
    for i in range(n):
        residual[0, :, i, i : i + 2] = torch.tensor([2.0, -1.0, 0.5])[:, None]  # stair i: (i, i) and (i, i + 1)
    proposal = precursor(residual, torch.zeros(1, 1, n + 1, n + 1))[0, 0]
    stairs = torch.stack([proposal[i, i : i + 2].min() for i in range(n)])
    assert stairs[: nets.MAX_ROUNDS].min() > 0.99 and stairs[nets.MAX_ROUNDS + 1 :].max() < 0.01


def test_a_flat_object_is_proposed_whole_and_nothing_else(precursor):
    residual = torch.zeros(1, 3, 32, 32)
    residual[..., 4:20, 6:14] = torch.tensor([2.0, -1.0, 0.5])[:, None, None]  # a flat object on a flat background
    proposal = precursor(residual, torch.zeros(1, 1, 32, 32))[0, 0]
    assert proposal[4:20, 6:14].min() > 0.99
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[4:20, 6:14] = False
    assert proposal[outside].max() < 0.01


def test_taken_pixels_are_never_proposed_and_block_the_way(precursor):
    residual = torch.zeros(1, 3, 16, 16)
    residual[..., :, :] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    residual[:, 0, 0, 0] = 1.2  # the seed (strongest residual), top left, of a colour like its neighbours
    taken = torch.zeros(1, 1, 16, 16)
    taken[..., :, 8] = 1.0  # a wall of taken pixels down the middle
    proposal = precursor(residual, taken)[0, 0]
    assert proposal[:, 8].max() < 1e-5
    assert proposal[:, 9:].max() < 1e-3  # the far side is unreachable
    assert proposal[:, :7].min() > 0.9


def test_ideal_tokens_on_its_proposals_find_the_objects(precursor):
    """If each token rebuilt exactly the residual inside S's proposal, the proposals would segment
    generated training scenes well: the bound on what the masked VLE learns to reproduce."""
    scenes = SceneSet(24, size=64, seed=TRAIN_SEED)
    x = torch.stack([scenes[i][0] for i in range(24)])
    reconstruction, taken, proposals = torch.zeros_like(x), torch.zeros_like(x[:, :1]), []
    for _ in range(6):
        proposal = precursor(normalise(x - reconstruction)[0], taken.clamp(max=1))
        reconstruction = reconstruction + proposal * (x - reconstruction)
        taken = taken + proposal
        proposals.append(proposal)
    labels = torch.cat(proposals, 1).argmax(1).numpy()
    scores = [metrics.foreground_ari(scenes[i][1].numpy(), labels[i]) for i in range(24)]
    assert np.mean(scores) > 0.85


def test_strongest_seed_finds_the_small_bright_region_and_largest_the_big_one():
    residual = torch.zeros(1, 3, 32, 32)
    residual[..., :, :20] = torch.tensor([0.6, 0.6, 0.6])[:, None, None]  # a large, faint region
    residual[..., 24:28, 24:28] = torch.tensor([4.0, -2.0, 0.0])[:, None, None]  # a small, strong one
    free = torch.zeros(1, 1, 32, 32)
    strongest = Precursor(vle_core.preset("masked-tiny"))(residual, free)[0, 0]
    largest = Precursor(vle_core.preset("masked-tiny", precursor_seed="largest", precursor_tau=0.5))(residual, free)[
        0, 0
    ]
    assert strongest[24:28, 24:28].min() > 0.99 and strongest[:, :20].max() < 0.01
    assert largest[:, :20].min() > 0.99 and largest[24:28, 24:28].max() < 0.01


def test_energy_seed_groups_the_image_and_starts_where_most_is_left_to_rebuild():
    """S groups the image's colours, but with the "energy" rule starts at the group holding the
    most residual energy: here the smaller right half, since the left is already rebuilt."""
    image = torch.zeros(1, 3, 32, 32)
    image[..., :, :20] = -1.0  # a large dark region
    image[..., :, 20:] = 1.0  # a smaller bright one
    residual = torch.zeros(1, 3, 32, 32)
    residual[..., :, :20] = 0.05  # almost nothing left on the left
    # texture left on the right
    residual[..., :, 20:] = torch.randn(1, 3, 32, 12, generator=torch.Generator().manual_seed(0))
    free = torch.zeros(1, 1, 32, 32)
    settings = dict(precursor_tau=0.5, precursor_sigma=0.5, precursor_smoothing=1)
    energy = Precursor(vle_core.preset("masked-tiny", precursor_seed="energy", **settings))(residual, free, image)[0, 0]
    largest = Precursor(vle_core.preset("masked-tiny", precursor_seed="largest", **settings))(residual, free, image)[
        0, 0
    ]
    # the whole textured half: grouped by the image, not the residual
    assert energy[:, 20:].min() > 0.99 and energy[:, :20].max() < 0.01
    assert largest[:, :20].min() > 0.99 and largest[:, 20:].max() < 0.01


def test_an_unknown_seed_rule_is_refused():
    with pytest.raises(ValueError, match="precursor_seed"):
        vle_core.preset("masked-tiny", precursor_seed="random")


def test_min_area_passes_over_a_speck_for_a_larger_region_and_takes_it_once_nothing_larger_is_left():
    residual = torch.zeros(1, 3, 32, 32)
    residual[..., :, :20] = torch.tensor([0.6, 0.6, 0.6])[:, None, None]  # a large, fainter region (62%)
    residual[..., 24:26, 24:26] = torch.tensor([4.0, -2.0, 0.0])[:, None, None]  # a 4-pixel speck (0.4%), the strongest
    s = Precursor(vle_core.preset("masked-tiny", precursor_min_area=0.01))
    proposal = s(residual, torch.zeros(1, 1, 32, 32))[0, 0]
    assert proposal[:, :20].min() > 0.99 and proposal[24:26, 24:26].max() < 0.01
    everything_else = torch.ones(1, 1, 32, 32)
    everything_else[..., 24:26, 24:26] = 0.0
    last = s(residual, everything_else)[0, 0]  # the speck is all that is left: it is proposed
    assert last[24:26, 24:26].min() > 0.99


def test_when_every_try_grows_a_speck_the_largest_free_colour_group_is_proposed():
    """Normalisation brings a flat background near zero, the weakest residual: matching pursuit
    seeds on the specks (rims, highlights) first. Once `tries` seeds all grew specks, S proposes
    the largest free colour group instead, the background."""
    residual = torch.zeros(1, 3, 32, 32)
    # six 4-pixel specks, each its own colour
    for k, (y, x) in enumerate([(2, 2), (2, 20), (12, 8), (20, 26), (26, 4), (28, 16)]):
        residual[0, :, y : y + 2, x : x + 2] = torch.tensor([3.0 - 0.3 * k, -2.0 + 0.5 * k, 1.0])[:, None, None]
    specks = residual.abs().sum(1)[0] > 0
    s = Precursor(vle_core.preset("masked-tiny", precursor_min_area=0.01, precursor_tries=2))
    proposal = s(residual, torch.zeros(1, 1, 32, 32))[0, 0]
    assert proposal[~specks].min() > 0.99 and proposal[specks].max() < 0.01
    with pytest.raises(ValueError, match="precursor_tries"):
        vle_core.preset("masked-tiny", precursor_tries=0)


def test_the_fallback_finds_a_free_region_between_the_coarse_grids_points():
    """A scene's last objects can be too small for S's minimum and sit between the 12 x 12 grid of
    candidate seeds: the fallback looks at every pixel, so it proposes the larger object rather
    than the speck a try grew (held-out scene 192: a 0.6% object before one of 1.2%)."""
    residual = torch.zeros(1, 3, 64, 64)
    taken = torch.ones(1, 1, 64, 64)
    # 25 pixels between the grid's rows 0 and 6
    residual[0, :, 1:6, 1:6] = torch.tensor([0.5, 0.2, -0.3])[:, None, None]
    taken[0, :, 1:6, 1:6] = 0
    # 4-pixel specks of strong colours, where the tries seed
    for k, (y, x) in enumerate([(30, 30), (44, 50), (50, 20)]):
        residual[0, :, y : y + 2, x : x + 2] = torch.tensor([3.0 - 0.5 * k, -2.0, 1.0 + 0.5 * k])[:, None, None]
        taken[0, :, y : y + 2, x : x + 2] = 0
    region = torch.zeros(64, 64, dtype=torch.bool)
    region[1:6, 1:6] = True
    s = Precursor(vle_core.preset("masked-tiny", precursor_min_area=0.01, precursor_tries=2))
    proposal = s(residual, taken)[0, 0]
    assert proposal[region].min() > 0.99 and proposal[~region].max() < 0.01


def test_where_the_region_would_be_small_s_proposes_all_that_is_left():
    """rest_area: a region under that share of the image is not proposed alone; the rest of the
    image (all that is free) is, in one token. A region that large is proposed as before."""
    residual = torch.zeros(1, 3, 32, 32)
    residual[..., :, :20] = torch.tensor([0.6, 0.6, 0.6])[:, None, None]  # 62% of the image
    residual[..., 24:26, 24:26] = torch.tensor([4.0, -2.0, 0.0])[:, None, None]  # a 0.4% speck, the strongest: S's seed
    taken = torch.zeros(1, 1, 32, 32)
    taken[..., 28:, :] = 0.5  # half taken at the bottom: the rest is what is still free
    plain = Precursor(vle_core.preset("masked-tiny"))(residual, taken)
    rest = Precursor(vle_core.preset("masked-tiny", precursor_rest_area=0.05))(residual, taken)
    assert float(plain.mean()) < 0.01  # without it: the speck
    torch.testing.assert_close(rest, 1 - taken)
    large = Precursor(vle_core.preset("masked-tiny", precursor_rest_area=0.003))(residual, taken)
    torch.testing.assert_close(large, plain)  # the speck (0.4%) is above this rest_area: proposed as it is
    with pytest.raises(ValueError, match="rest_area"):
        vle_core.preset("masked-tiny", precursor_rest_area=1.5)


SEED_RULES = [
    dict(),
    dict(precursor_min_area=0.02),
    dict(
        precursor_seed="largest", precursor_tau=0.7, precursor_sigma=3.0, precursor_smoothing=3, precursor_min_area=0.02
    ),
    dict(
        precursor_seed="energy", precursor_tau=1.0, precursor_sigma=3.0, precursor_smoothing=3, precursor_min_area=0.01
    ),
    dict(
        precursor_seed="largest",
        precursor_tau=0.7,
        precursor_sigma=3.0,
        precursor_smoothing=3,
        precursor_rest_area=0.05,
    ),
]


@pytest.mark.parametrize("overrides", SEED_RULES)
@pytest.mark.parametrize("seed", [0, 1])
def test_proposals_lie_in_0_1_leave_taken_pixels_alone_and_are_deterministic(overrides, seed):
    s = Precursor(vle_core.preset("masked-tiny", **overrides))
    generator = torch.Generator().manual_seed(seed)
    residual = normalise(torch.randn(3, 3, 40, 48, generator=generator).cumsum(3))[0]
    taken = torch.zeros(3, 1, 40, 48)
    for _ in range(5):  # as the loop calls it: each proposal joins what is taken
        proposal = s(residual, taken.clamp(max=1))
        assert proposal.shape == taken.shape and proposal.min() >= 0 and proposal.max() <= 1
        assert (proposal * (taken >= 1)).max() < 1e-5  # what earlier tokens took is not proposed again
        assert torch.equal(proposal, s(residual, taken.clamp(max=1)))  # deterministic: no randomness, no state
        taken = taken + proposal


def shipped_s_settings() -> dict:
    """The weightless S of every shipped masked checkpoint, by name: its config (no weights needed)."""
    settings = {}
    for folder in sorted(CHECKPOINTS.iterdir()):
        meta = json.loads((folder / "config.json").read_text())
        if meta["kind"] == "masked" and meta["config"].get("precursor", "grown") == "grown":
            settings[folder.name] = config_from_dict("masked", meta["config"])
    return settings


def worst_case(kind: str, size: int) -> torch.Tensor:
    """[1, 3, size, size] in [-1, 1]: pure noise, a mosaic of 3 x 3 squares of random colours
    (thousands of small regions), or one flat colour."""
    generator = torch.Generator().manual_seed(0)
    if kind == "noise":
        return torch.rand(1, 3, size, size, generator=generator) * 2 - 1
    if kind == "mosaic":
        squares = torch.rand(1, 3, size // 3 + 1, size // 3 + 1, generator=generator) * 2 - 1
        return squares.repeat_interleave(3, 2).repeat_interleave(3, 3)[..., :size, :size]
    return torch.full((1, 3, size, size), 0.3)


def work_bound(s: Precursor, H: int, W: int) -> dict:
    """The most work one call of S may do on an H x W image, whatever the image: tries + the
    fallback's grows, each at most one labelling, MAX_ROUNDS rounds of growing and one path search
    over the image, and colour shares of the coarse grid's candidates per try and the fallback, and
    of every pixel of the share grid once."""
    stride = max(1, round(math.sqrt(H * W / nets.SHARE_PIXELS)))
    grid = len(range(0, H, stride)) * len(range(0, W, stride))
    grows = s.tries + 2  # the tries, then the fallback's two (nets.Precursor.region)
    return {
        "grows": grows,
        "labellings": grows,
        "rounds": grows * nets.MAX_ROUNDS,
        "path_pixels": grows * H * W,
        "colour_pairs": (s.tries + 1) * nets.CANDIDATE_GRID**2 * grid + grid**2,
    }


def encode_with_ideal_tokens(s: Precursor, x: torch.Tensor, n_tokens: int) -> list[dict]:
    """Call S as the residual loop does, each token rebuilding the residual exactly inside S's
    proposal; returns the work of each call."""
    image, reconstruction, taken, work = normalise(x)[0], torch.zeros_like(x), torch.zeros_like(x[:, :1]), []
    for _ in range(n_tokens):
        s.work.clear()
        proposal = s(normalise(x - reconstruction)[0], taken.clamp(max=1), image)
        work.append(dict(s.work))
        reconstruction = reconstruction + proposal * (x - reconstruction)
        taken = taken + proposal
    return work


@pytest.mark.parametrize("kind", ["noise", "mosaic", "flat"])
@pytest.mark.parametrize("name", sorted(shipped_s_settings()))
def test_s_work_per_token_is_bounded_whatever_the_image(name, kind):
    s = Precursor(shipped_s_settings()[name])
    bound = work_bound(s, 96, 96)
    for work in encode_with_ideal_tokens(s, worst_case(kind, 96), 8):
        assert work["grows"] >= 1 and all(work.get(k, 0) <= bound[k] for k in bound), (work, bound)


@pytest.mark.parametrize("name", sorted(shipped_s_settings()))
def test_s_work_is_bounded_on_a_768_px_image_with_32_tokens(name):
    s = Precursor(shipped_s_settings()[name])
    bound = work_bound(s, 768, 768)
    work = encode_with_ideal_tokens(s, worst_case("noise", 768), 32)
    assert all(all(w.get(k, 0) <= bound[k] for k in bound) for w in work)
    assert sum(w["labellings"] for w in work) <= 32 * bound["labellings"]
