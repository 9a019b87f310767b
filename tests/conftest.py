"""Shared fixtures and helpers: tiny untrained models (trained ones are not needed to check
invariants), a synthetic test image, a free port to serve the app on."""

import socket

import numpy as np
import pytest
import torch

import vle_core


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A few flat rectangles on a gradient: HxWx3 uint8, structured enough to be compressible."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack([xs / max(width - 1, 1), ys / max(height - 1, 1), np.full((height, width), 0.5)], axis=-1)
    for _ in range(3):
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(1, height // 2 + 2), rng.integers(1, width // 2 + 2)
        image[y0 : y0 + h, x0 : x0 + w] = rng.random(3)
    return (image * 255).astype(np.uint8)


def free_port() -> int:
    """A TCP port free on the loopback interface now, to serve the app on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_staged_model(name: str = "vanilla-tiny-staged"):
    """A staged VLE with a random orthonormal linear code and random (not zero) convolutional
    outputs, so both of its paths are at work."""
    model = vle_core.build_model(vle_core.preset(name))
    model.init_linear_code(torch.linalg.qr(torch.randn(192, 192)).Q)
    with torch.no_grad():
        for encoder, decoder in model.coders():  # each token's own E and D (own_stages) differ
            for conv in (encoder.conv_out, decoder.conv_out):
                conv.weight.normal_(0, 0.02)
    return model


@pytest.fixture(params=["vanilla-tiny", "masked-tiny", "vanilla-tiny-staged"])
def tiny_vle(request) -> vle_core.VLE:
    torch.manual_seed(0)
    model = (
        random_staged_model()
        if request.param == "vanilla-tiny-staged"
        else vle_core.build_model(vle_core.preset(request.param))
    )
    return vle_core.VLE(model, device="cpu")


@pytest.fixture
def image() -> np.ndarray:
    return synthetic_image(48, 72)


# Modules that train, time, serve pages to a browser or start processes: most of the suite's
# minutes. `python -m pytest -m "not slow"` leaves them out for everyday work.
SLOW = {
    "test_train.py",
    "test_staged.py",
    "test_learning.py",
    "test_masked_photos.py",
    "test_bench.py",
    "test_load.py",
    "test_browser.py",
    "test_app_faults.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW:
            item.add_marker(pytest.mark.slow)
