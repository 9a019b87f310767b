"""An image's own length: VLE.encode with a quality target stops at the first token count that
reaches it, and those tokens are the first ones of any longer encode of the same image."""

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vle_core
from vle_core import metrics

ROOT = Path(__file__).resolve().parents[1]


def psnr_curve(encoding) -> list[float]:
    return [metrics.psnr(encoding.image, r) for r in encoding.reconstructions]


def test_a_reached_target_stops_at_the_first_count_that_reaches_it(tiny_vle, image):
    long = tiny_vle.encode(image, 6)
    curve = psnr_curve(long)
    target = curve[2] - 1e-6  # three tokens reach it; fewer may too, if the curve is not rising
    expected = next(k for k, value in enumerate(curve, start=1) if value >= target)
    short = tiny_vle.encode(image, target_psnr=target, max_tokens=6)
    assert len(short) == expected and short.reached is True and short.target == {"psnr": target}
    assert metrics.psnr(image, short.reconstructions[-1]) >= target
    assert all(value < target for value in curve[: expected - 1])
    for name in ("latents", "mean", "std", "stage"):
        np.testing.assert_array_equal(getattr(short.tokens, name), getattr(long.tokens, name)[:expected])
    np.testing.assert_array_equal(short.reconstructions, long.reconstructions[:expected])


def test_an_unreachable_target_stops_at_the_cap_and_says_so(tiny_vle, image):
    encoding = tiny_vle.encode(image, target_psnr=200.0, max_tokens=3)
    assert len(encoding) == 3 and encoding.reached is False
    assert "not reached" in repr(encoding)
    fixed = tiny_vle.encode(image, 3)
    assert fixed.reached is None and fixed.target is None


def test_both_targets_must_be_reached(tiny_vle, image):
    long = tiny_vle.encode(image, 5)
    psnr, ssim = psnr_curve(long), [metrics.ssim(image, r) for r in long.reconstructions]
    encoding = tiny_vle.encode(image, target_psnr=psnr[0] - 1e-6, target_ssim=min(1.0, ssim[3] - 1e-6), max_tokens=5)
    expected = next(k for k in range(1, 6) if psnr[k - 1] >= psnr[0] - 1e-6 and ssim[k - 1] >= ssim[3] - 1e-6)
    assert len(encoding) == expected and encoding.reached


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({}, "either n_tokens or a quality target"),
        ({"n_tokens": 4, "target_psnr": 30.0}, "either n_tokens or a quality target"),
        ({"target_psnr": -3.0}, "above 0"),
        ({"target_psnr": 0.0}, "above 0"),
        ({"target_psnr": math.nan}, "finite"),
        ({"target_psnr": math.inf}, "finite"),
        ({"target_psnr": "30"}, "finite number"),
        ({"target_ssim": 1.5}, "between 0 and 1"),
        ({"target_ssim": math.nan}, "finite"),
        ({"target_psnr": 30.0, "max_tokens": 0}, "max_tokens"),
        ({"target_psnr": 30.0, "max_tokens": 10_000}, "max_tokens"),
        ({"n_tokens": 2.5}, "n_tokens"),
    ],
)
def test_bad_targets_are_refused_with_a_message(tiny_vle, arguments, message, image):
    with pytest.raises(ValueError, match=message):
        tiny_vle.encode(image, **arguments)


def test_encode_takes_a_path(tiny_vle, tmp_path, image):
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(tiny_vle.encode(path, 2).reconstructions, tiny_vle.encode(image, 2).reconstructions)
    np.testing.assert_array_equal(
        tiny_vle.encode(str(path), 2).reconstructions, tiny_vle.encode(image, 2).reconstructions
    )


def test_a_smooth_gradient_takes_fewer_tokens_than_a_detailed_photo():
    """With the shipped default checkpoint: length follows how much there is to describe."""
    vle = vle_core.load_vle(ROOT / "checkpoints" / "vanilla-natural")
    photo = np.asarray(Image.open(ROOT / "assets" / "kodak-hats.png").convert("RGB"))
    H, W = photo.shape[:2]
    ramp = np.linspace(0, 1, W, dtype=np.float32)[None, :, None] * np.array([0.9, 0.6, 0.3], np.float32)
    gradient = np.broadcast_to(0.05 + ramp, (H, W, 3)).copy()
    smooth = vle.encode(gradient, target_psnr=32.0, max_tokens=16)
    detailed = vle.encode(photo, target_psnr=32.0, max_tokens=16)
    assert smooth.reached
    assert len(smooth) < len(detailed)
