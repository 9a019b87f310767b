"""The encode worker (explorer/worker.py): a child process makes exactly the encoding the server
would have made, and whatever goes wrong with it (killed, other files on disk) the server encodes
in-process instead."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import shutil
import signal

import app_helpers
import numpy as np
import pytest
import torch
from app_helpers import N, encode, save_png
from conftest import synthetic_image

import explorer
import vle_core
from explorer import models, settings, worker

# Fixtures: tiny checkpoints, the app pointed at them, the images its encoder runs on.
checkpoints, fresh, encodes = app_helpers.checkpoints, app_helpers.fresh, app_helpers.encodes


@pytest.fixture(scope="module", autouse=True)
def stopped():
    """One child for the module's tests (started by the first encode), stopped after them."""
    yield
    worker.stop()


@pytest.fixture
def on(fresh, monkeypatch):
    """The app with its encode worker, on the CPU (as on a machine without a GPU)."""
    monkeypatch.setattr(settings, "ENCODE_WORKER", True)
    monkeypatch.setattr(settings, "DEVICE", torch.device("cpu"))
    monkeypatch.setattr(worker, "_deaths", 0)
    return fresh


def assert_same(a: vle_core.Encoding, b: vle_core.Encoding):
    for name in ("latents", "mean", "std", "stage"):
        x, y = getattr(a.tokens, name), getattr(b.tokens, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert a.tokens.image_size == b.tokens.image_size
    for name in ("contributions", "reconstructions", "masks", "image"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name


@pytest.fixture
def answers(monkeypatch) -> list:
    """What the worker answered each encode asked of it during a test, in order: an Encoding made
    by the child, or None where the caller encodes in-process (models.encode_image calls it)."""
    answers, ask = [], worker.encode

    def watched(*args):
        answers.append(ask(*args))
        return answers[-1]

    monkeypatch.setattr(worker, "encode", watched)
    return answers


def through_worker(answers: list, vle, image, n=N) -> vle_core.Encoding:
    asked = len(answers)
    encoding = models.encode_image(vle, image, n)
    assert len(answers) == asked + 1 and answers[-1] is encoding  # made by the child, not in-process
    return encoding


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_an_encode_through_the_worker_is_the_in_process_encode(on, checkpoint, answers, encodes):
    _, vle = models.get_model(checkpoint)
    image = synthetic_image(48, 72)
    encoding = through_worker(answers, vle, image)
    assert_same(encoding, vle.encode(image, N))
    assert (encoding.masks is not None) == checkpoint.startswith("masked")
    assert worker.pid() is not None and worker.pid() != os.getpid()

    asked = len(answers)  # the app's own path: upload, encode, cache
    encode(save_png(on, "a.png", synthetic_image(40, 40, seed=3)), checkpoint)
    assert len(encodes) == 1 and len(answers) == asked + 1 and answers[-1] is not None

    # a user's error still reaches the user
    with pytest.raises(ValueError, match="n_tokens must be a whole number between"):
        models.encode_image(vle, image, vle_core.vle.MAX_TOKENS + 1)


def test_switched_off_or_on_a_gpu_it_encodes_in_process(on, monkeypatch, answers):
    assert worker.usable()
    monkeypatch.setattr(settings, "DEVICE", torch.device("cuda"))
    assert not worker.usable()
    monkeypatch.setattr(settings, "DEVICE", torch.device("cpu"))
    monkeypatch.setattr(settings, "ENCODE_WORKER", False)
    assert not worker.usable()
    _, vle = models.get_model("vanilla-tiny")
    assert_same(models.encode_image(vle, synthetic_image(64, 64), 3), vle.encode(synthetic_image(64, 64), 3))
    assert answers == []  # the worker was not asked


def test_a_killed_worker_falls_back_and_the_next_encode_starts_another(on, monkeypatch, answers):
    _, vle = models.get_model("masked-tiny")
    image = synthetic_image(48, 72)
    expected = vle.encode(image, N)
    through_worker(answers, vle, image)

    first = worker.pid()
    os.kill(first, signal.SIGKILL)
    worker._process.wait()  # found dead before the request: started again
    assert_same(through_worker(answers, vle, image), expected)
    assert worker.pid() != first

    second = worker.pid()
    os.kill(second, signal.SIGKILL)
    worker._process.wait()
    # as if it died just after the check: the request finds it gone
    monkeypatch.setattr(worker._process, "poll", lambda: None)
    assert_same(models.encode_image(vle, image, N), expected)  # made in-process
    assert answers[-1] is None
    assert_same(through_worker(answers, vle, image), expected)
    assert worker.pid() not in (first, second)


def test_a_checkpoint_changed_on_disk_is_not_encoded_with_its_new_weights(on, checkpoints, answers):
    folder = on / "checkpoints"
    shutil.copytree(checkpoints / "masked-tiny", folder / "masked-tiny")
    explorer.configure(checkpoints=folder, cache_dir=on / "cache", cache_mb=64)
    model_id, vle = models.get_model("masked-tiny")
    image = synthetic_image(48, 72)
    through_worker(answers, vle, image)  # the child has loaded these files

    torch.manual_seed(1)  # other weights, same shapes: the parent keeps the model it loaded
    vle_core.save_checkpoint(
        vle_core.build_model(vle_core.preset("masked-tiny")),
        folder / "masked-tiny",
        "# masked-tiny\nRetrained.",
        training={"max_tokens": 4},
    )
    assert worker.checkpoint_id(folder / "masked-tiny") != model_id
    assert_same(models.encode_image(vle, image, N), vle.encode(image, N))  # the parent's weights, in-process
    assert answers[-1] is None

    new_id, new = models.get_model("masked-tiny")  # the app reloads the new files: the child serves them again
    assert new_id != model_id and new is not vle
    encoding = through_worker(answers, new, image)
    assert_same(encoding, new.encode(image, N))
    assert not np.array_equal(encoding.contributions, vle.encode(image, N).contributions)
