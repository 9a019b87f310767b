"""The held-out evaluation suites, on small stand-ins for the real data."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

import vle_core
from vle_core import edit_suites, evaluate, evaluation, metrics
from vle_core.baselines import BASELINES
from vle_core.data import human_segmentations
from vle_core.evaluation import bsds_segmentation_suite, scene_suite, token_usage, tune_precursor
from vle_core.pca import patches


def write_ground_truth(path, segmentations):
    """A .mat file laid out as BSDS500's: a 1 x N cell array of structs (Segmentation, Boundaries)."""
    cells = np.empty((1, len(segmentations)), dtype=object)
    for i, segmentation in enumerate(segmentations):
        annotator = np.empty((1, 1), dtype=[("Segmentation", "O"), ("Boundaries", "O")])
        annotator[0, 0]["Segmentation"] = segmentation
        annotator[0, 0]["Boundaries"] = np.zeros_like(segmentation, dtype=bool)
        cells[0, i] = annotator
    savemat(path, {"groundTruth": cells})


def test_human_segmentations_are_whole_label_maps(tmp_path):
    left_right = np.repeat(np.array([[1, 1, 2, 2]], np.uint16), 3, axis=0)
    top_bottom = np.array([[1] * 4, [1] * 4, [2] * 4], np.uint16)
    write_ground_truth(tmp_path / "gt.mat", [left_right, top_bottom])
    maps = human_segmentations(tmp_path / "gt.mat")
    assert len(maps) == 2
    np.testing.assert_array_equal(maps[0], left_right)
    np.testing.assert_array_equal(maps[1], top_bottom)


@pytest.fixture
def masked_tiny() -> vle_core.VLE:
    torch.manual_seed(0)
    return vle_core.VLE(vle_core.build_model(vle_core.preset("masked-tiny")), device="cpu")


def test_bsds_segmentation_suite_scores_against_every_annotator(tmp_path, monkeypatch, masked_tiny):
    root = tmp_path / "bsds500"
    (root / "images" / "test").mkdir(parents=True)
    (root / "groundTruth" / "test").mkdir(parents=True)
    image = np.zeros((24, 32, 3), np.uint8)
    image[:, 16:] = (200, 40, 40)  # two flat halves
    Image.fromarray(image).save(root / "images" / "test" / "1.jpg", quality=95)
    halves = np.where(np.arange(32) < 16, 1, 2).astype(np.uint16)[None].repeat(24, axis=0)
    write_ground_truth(root / "groundTruth" / "test" / "1.mat", [halves, np.ones((24, 32), np.uint16)])
    monkeypatch.setenv("VLE_DATA", str(tmp_path))
    result = bsds_segmentation_suite(masked_tiny, n_tokens=3)
    assert result["images"] == 1 and 1 <= result["segments"] <= 3
    for key in ("ari", "ari_kmeans", "ari_slic", "ari_felzenszwalb"):  # the model beside the three classical segmenters
        assert -1 <= result[key] <= 1
    for name in ("2", "3"):  # every k-th image: 3 images, every 2nd scores the 1st and the 3rd
        Image.fromarray(image).save(root / "images" / "test" / f"{name}.jpg", quality=95)
        write_ground_truth(root / "groundTruth" / "test" / f"{name}.mat", [halves])
    assert bsds_segmentation_suite(masked_tiny, n_tokens=3, every=2)["images"] == 2


def two_tone() -> torch.Tensor:
    """[1, 3, 32, 32] in [-1, 1]: a left half and a right half of slightly different grey."""
    x = torch.full((1, 3, 32, 32), -0.2)
    x[..., 16:] = 0.2
    return x


def test_set_precursor_changes_what_S_proposes_and_nothing_else(masked_tiny):
    weights = {name: t.clone() for name, t in masked_tiny.model.state_dict().items()}
    first = {}
    for tau in (10.0, 0.5):  # wide enough to join both halves, then narrow enough to keep one
        masked_tiny.model.set_precursor(precursor_tau=tau, precursor_sigma=10.0, precursor_seed="largest")
        assert masked_tiny.model.precursor.tau == tau and masked_tiny.model.config.precursor_tau == tau
        first[tau] = vle_core.residual_loop(masked_tiny.model, two_tone(), 1).proposals[0][0, 0]
    assert (first[10.0] > 0.5).float().mean() == 1.0
    assert (first[0.5] > 0.5).float().mean() == 0.5
    for name, t in masked_tiny.model.state_dict().items():  # S has no weights: E and D are as trained
        assert torch.equal(t, weights[name])


def test_S_settings_are_refused_for_a_model_without_the_weightless_S(tmp_path, monkeypatch):
    learned = vle_core.build_model(vle_core.preset("masked-tiny", precursor="learned"))
    with pytest.raises(ValueError, match="weightless S"):
        learned.set_precursor(precursor_tau=0.5)
    vle_core.save_checkpoint(vle_core.build_model(vle_core.preset("vanilla-tiny")), tmp_path / "vanilla", card="# tiny")
    monkeypatch.setenv("VLE_DATA", str(tmp_path / "no-data"))
    with pytest.raises(ValueError, match="scores masks"):  # before any data is read: there is none here
        tune_precursor(tmp_path / "vanilla")


def test_tune_precursor_scores_each_setting_on_train_and_val_only(tmp_path, monkeypatch, capsys, masked_tiny):
    root = tmp_path / "bsds500"
    image = np.zeros((24, 32, 3), np.uint8)
    image[:, 16:] = (200, 40, 40)
    halves = np.where(np.arange(32) < 16, 1, 2).astype(np.uint16)[None].repeat(24, axis=0)
    for split in ("train", "val"):  # no test folder: reading it would raise
        (root / "images" / split).mkdir(parents=True)
        (root / "groundTruth" / split).mkdir(parents=True)
        Image.fromarray(image).save(root / "images" / split / "1.jpg", quality=95)
        write_ground_truth(root / "groundTruth" / split / "1.mat", [halves])
    monkeypatch.setenv("VLE_DATA", str(tmp_path))
    vle_core.save_checkpoint(masked_tiny.model, tmp_path / "ckpt", card="# tiny")
    grid = [{"precursor_tau": 0.5}, {"precursor_tau": 1000.0}]
    best = tune_precursor(tmp_path / "ckpt", every=1, n_tokens=3, grid=grid)
    printed = capsys.readouterr().out
    assert best in grid
    for settings in grid:
        assert f"S {settings}: ARI" in printed and "on 2 train+val images" in printed
    assert "slic with as many segments as the best" in printed and f"best: {best}" in printed


@pytest.mark.parametrize(
    "extra, expected",
    [
        ([], evaluation.PRECURSOR_GRID),
        (["--rest-area", "0", "0.02"], [{"precursor_rest_area": 0.0}, {"precursor_rest_area": 0.02}]),
    ],
)
def test_the_tune_command_compares_seed_and_tolerance_or_the_rest_areas_asked(monkeypatch, extra, expected):
    asked = {}
    monkeypatch.setattr(
        evaluate,
        "tune_precursor",
        lambda checkpoint, n_tokens, grid: asked.update(checkpoint=checkpoint, n_tokens=n_tokens, grid=grid),
    )
    evaluate.main(["CKPT", "--tune-precursor", "--tokens", "8", *extra])
    assert asked == {"checkpoint": "CKPT", "n_tokens": 8, "grid": expected}


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_each_baseline_is_given_as_many_segments_as_asked(method):
    # four flat quadrants, each larger than Felzenszwalb's min_size: four segments to find
    image = np.zeros((80, 120, 3), np.float32)
    image[:40, 60:] = (0.9, 0.1, 0.1)
    image[40:, :60] = (0.1, 0.8, 0.2)
    image[40:, 60:] = (0.2, 0.2, 0.9)
    quadrants = (np.arange(80)[:, None] >= 40) * 2 + (np.arange(120)[None] >= 60)
    labels = BASELINES[method](image, 4)
    assert labels.shape == (80, 120) and len(np.unique(labels)) == 4
    assert metrics.ari(quadrants, labels) > 0.9


def test_fast_ari_is_sklearns_ari():
    rng = np.random.default_rng(0)
    for _ in range(50):
        shape = tuple(rng.integers(1, 12, 2))
        truth, pred = rng.integers(0, rng.integers(1, 6), shape), rng.integers(0, rng.integers(1, 6), shape)
        assert metrics.fast_ari(truth, pred) == pytest.approx(metrics.ari(truth, pred), abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        metrics.fast_ari(np.zeros((2, 3), int), np.zeros((3, 2), int))


def test_scene_suite_scores_masks_and_refuses_a_model_without_them(masked_tiny):
    result = scene_suite(masked_tiny, n_tokens=3, n_scenes=3, size=32)
    assert result["scenes"] == 3 and -1 <= result["fg_ari"] <= 1 and 0 < result["fg_ari_rgb_argmax"] <= 1
    vanilla = vle_core.VLE(vle_core.build_model(vle_core.preset("vanilla-tiny")), device="cpu")
    with pytest.raises(ValueError, match="masks"):
        scene_suite(vanilla, n_tokens=2, n_scenes=1, size=32)


def test_a_mask_suite_refuses_a_vanilla_model_before_any_progress_bar(capsys):
    vanilla = vle_core.VLE(vle_core.build_model(vle_core.preset("vanilla-tiny")), device="cpu")
    for suite in (scene_suite, bsds_segmentation_suite, edit_suites.edits_suite, edit_suites.removal_suite):
        with pytest.raises(ValueError, match="masked checkpoint"):
            suite(vanilla, n_tokens=2)
    assert capsys.readouterr().err == ""


def test_token_usage_finds_an_early_speck_and_the_background_token():
    labels = np.zeros((20, 20), int)
    labels[5:10, 5:10] = 1  # an object; the rest is background
    speck, obj, background = np.zeros((3, 20, 20))
    speck[0, 0] = 1  # one pixel: 0.25% of the image
    obj[5:10, 5:10] = 1
    background[labels == 0] = 1
    assert token_usage(np.stack([speck, obj, background]), labels) == (True, 3)
    # the speck comes once nothing larger is left
    assert token_usage(np.stack([background, obj, speck]), labels) == (False, 1)
    assert token_usage(np.stack([obj, speck]), labels) == (False, None)


def test_region_bound_is_what_lossless_region_tokens_would_rebuild():
    """masked-tiny-photos: token 1 codes the whole image, then S proposes its two halves. Two
    region tokens cover all but the blurred seam, one covers half: the bound rises with them,
    and a vanilla model or no region token is refused."""
    from test_masked_photos import halves, photo_model

    vle = vle_core.VLE(photo_model(), device="cpu")
    image = halves().astype(np.float32) / 255
    one, two = (evaluation.region_bound(vle, [image], n) for n in (2, 3))
    assert 0.45 < one["coverage"] <= 0.5 and two["coverage"] > 0.9
    first = metrics.psnr(image, vle.encode(image, 1).reconstructions[0])  # what token 1 drew
    assert first < one["bound"] < two["bound"] and two["bound"] > two["psnr"] + 3
    assert evaluation.region_bound(vle, [image], 3, whole_from=vle)["bound_whole_from"] == pytest.approx(two["bound"])
    with pytest.raises(ValueError, match="region tokens"):
        evaluation.region_bound(vle, [image], 1)
    with pytest.raises(ValueError, match="masked checkpoint"):
        evaluation.region_bound(
            vle_core.VLE(vle_core.build_model(vle_core.preset("vanilla-tiny")), device="cpu"), [image], 3
        )


def test_linear_regions_spend_a_tokens_values_where_the_format_puts_them():
    """With the identity as the code, a token keeps the residual's first components at each patch
    it codes: 4 per patch across its region's frame, or all its values (4 per patch of the image)
    on the region's patches when dense; a later token takes the next components, and pixels its
    proposal leaves out keep what was drawn."""
    rng = np.random.default_rng(0)
    image, start = rng.random((16, 32, 3)), np.full((16, 32, 3), 0.5)  # 2 x 4 patches of 8 x 8
    region = np.zeros((16, 32))
    region[:, :8] = 1  # the first column of patches: 2 of the 8
    region[0, 0] = 0  # a pixel of it the proposal leaves out
    residual = patches(image - start)

    def kept(rebuilt, n):  # per patch: is the rebuilt patch the start plus the residual's first n components?
        ours = patches(rebuilt - start)
        # [3:]: all but pixel (0, 0), which the proposal leaves out
        return [np.allclose(ours[i][3:], np.r_[residual[i][:n], np.zeros(192 - n)][3:]) for i in range(8)]

    basis = np.eye(192)
    frame = evaluation.linear_regions(image, start, [region], basis, dense=False)
    dense = evaluation.linear_regions(image, start, [region], basis, dense=True)
    twice = evaluation.linear_regions(image, start, [region, region], basis, dense=False)
    assert kept(frame, 4) == [True, False, False, False, True, False, False, False]
    assert kept(dense, 16) == kept(frame, 4) and not any(kept(frame, 16))  # 8 patches x 4 values on 2 patches
    assert kept(twice, 8) == kept(frame, 4)  # the second token coded components 5-8, not 1-4 again
    outside = region == 0
    for rebuilt in (frame, dense, twice):
        np.testing.assert_array_equal(rebuilt[outside], start[outside])
    everywhere = evaluation.linear_regions(image, start, [np.ones((16, 32))], basis, dense=True)
    assert all(kept(everywhere, 4))  # a whole-image proposal: dense is the frame


def test_region_bound_with_a_basis_scores_the_three_ways_to_spend_the_values():
    """On the halves: a linear code within the lossless bound, and spending the values on the
    region alone beats spending them on its frame."""
    from test_masked_photos import halves, photo_model

    vle = vle_core.VLE(photo_model(), device="cpu")
    image = halves().astype(np.float32) / 255
    basis = evaluation.residual_basis(vle, [image])
    assert basis.shape == (192, 192) and np.allclose(basis.T @ basis, np.eye(192), atol=1e-8)
    result = evaluation.region_bound(vle, [image], 2, basis=basis)
    assert {"linear_whole", "linear_frame", "linear_dense"} <= set(result)
    assert result["linear_frame"] < result["linear_dense"] <= result["bound"] + 1e-6
    assert "linear_whole" not in evaluation.region_bound(vle, [image], 2)


def test_precursor_settings_change_s_on_the_trained_model_by_name_and_type(masked_tiny, capsys, monkeypatch):
    config = masked_tiny.config
    assert evaluate.precursor_settings(["tau=1.5", "precursor_min_area=0.02", "seed=largest", "tries=3"], config) == {
        "precursor_tau": 1.5,
        "precursor_min_area": 0.02,
        "precursor_seed": "largest",
        "precursor_tries": 3,
    }
    for bad in ("tau", "colour=3", "tries=many"):
        with pytest.raises(ValueError):
            evaluate.precursor_settings([bad], config)
    with pytest.raises(ValueError, match="masked"):
        evaluate.precursor_settings(["tau=1"], vle_core.preset("vanilla-tiny"))
    seen = {}
    monkeypatch.setattr(evaluate, "load_vle", lambda *a, **k: masked_tiny)
    monkeypatch.setattr(
        evaluate,
        "run_suite",
        lambda suite, vle, n, every, limit: seen.update(tau=vle.model.config.precursor_tau) or {"ari": 0.5},
    )
    evaluate.main(["ckpt", "--suite", "bsds-seg", "--precursor", "tau=0.25"])
    assert seen == {"tau": 0.25} and "ari: 0.500" in capsys.readouterr().out


def test_the_edits_suite_scores_against_the_scenes_drawn_edited(masked_tiny):
    result = edit_suites.edits_suite(masked_tiny, n_tokens=3, n_scenes=3, size=32)
    assert result["scenes"] == 3 and 0 <= result["iou"] <= 1
    for key in (
        "psnr_plain",
        "removed_psnr",
        "removed_psnr_left",
        "removed_psnr_left_paper",
        "moved_psnr",
        "moved_psnr_region",
    ):
        assert np.isfinite(result[key]), key
    assert result["removed_gap"] == pytest.approx(result["psnr_plain"] - result["removed_psnr"])
    tuned = edit_suites.tune_object_from(masked_tiny, thresholds=(0.2, 0.5), n_scenes=2, n_tokens=3, size=32)
    assert set(tuned) == {0.2, 0.5} and all(np.isfinite(v) for row in tuned.values() for v in row.values())


def test_a_composite_pastes_a_whole_human_segment_on_a_kodak_photo(tmp_path, monkeypatch, masked_tiny):
    (tmp_path / "kodak").mkdir()
    photo = np.full((48, 64, 3), 90, np.uint8)
    Image.fromarray(photo).save(tmp_path / "kodak" / "kodim01.png")
    root = tmp_path / "bsds500"
    (root / "images" / "test").mkdir(parents=True)
    (root / "groundTruth" / "test").mkdir(parents=True)
    source = np.zeros((321, 481, 3), np.uint8)  # a BSDS500 photo's size
    source[100:200, 150:300] = (250, 20, 20)  # a red box, 10% of the photo, off its border
    Image.fromarray(source).save(root / "images" / "test" / "1.png")
    (root / "images" / "test" / "1.png").rename(root / "images" / "test" / "1.jpg")  # lossless, under BSDS500's name
    labels = np.ones((321, 481), np.uint16)
    labels[100:200, 150:300] = 2
    write_ground_truth(root / "groundTruth" / "test" / "1.mat", [labels])
    monkeypatch.setenv("VLE_DATA", str(tmp_path))
    monkeypatch.setattr(edit_suites, "COMPOSITE_SIDE", 64)
    [(background, composite, pasted)] = list(edit_suites.composites(1))
    assert np.array_equal(background, photo / np.float32(255))
    assert pasted.sum() == round(150 * 64 / 481) * round(100 * 64 / 481)  # the whole box, scaled as the photo would be
    assert np.abs(composite[pasted] - [250 / 255, 20 / 255, 20 / 255]).max() < 0.05
    assert np.array_equal(composite[~pasted], background[~pasted])
    result = edit_suites.removal_suite(masked_tiny, n_tokens=3, n_photos=1)
    assert result["photos"] == 1 and 0 <= result["pasted_found"] <= 1
    assert result["psnr_pasted_grey"] == pytest.approx(-10 * np.log10(np.mean((0.5 - 90 / 255) ** 2)), abs=1e-3)


def test_every_suite_takes_every_and_limit_for_a_quicker_look(masked_tiny, monkeypatch):
    seen = {}
    monkeypatch.setattr(evaluation, "SUITES", {name: lambda vle, n, **kw: kw for name in evaluation.SUITES})
    for suite in evaluation.SUITES:
        seen[suite] = evaluation.run_suite(suite, masked_tiny, 2, every=3, limit=2)
    assert all(kw == {"every": 3, "limit": 2} for kw in seen.values())
    with pytest.raises(ValueError, match="--limit must be 1 or more"):
        evaluation.run_suite("kodak", masked_tiny, 2, limit=0)
    assert evaluation.subset(range(10), 3, 2) == [0, 3]


def test_scene_and_edit_suites_score_the_subset_asked(masked_tiny):
    assert scene_suite(masked_tiny, n_tokens=2, n_scenes=6, size=32, every=2, limit=2)["scenes"] == 2
    assert edit_suites.edits_suite(masked_tiny, n_tokens=2, n_scenes=6, size=32, every=3)["scenes"] == 2


@pytest.mark.parametrize("module", ["evaluate", "report", "ship", "train", "bench"])
def test_every_command_line_flag_has_help(module, monkeypatch):
    import argparse
    import importlib

    class Parsed(Exception):
        pass

    def capture(parser, *args, **kwargs):
        raise Parsed(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Parsed) as parsed:
        importlib.import_module(f"vle_core.{module}").main([])
    actions = [a for a in parsed.value.args[0]._actions if not isinstance(a, argparse._HelpAction)]
    assert actions and all(a.help for a in actions), [a.dest for a in actions if not a.help]
