"""What the app's tests share: tiny untrained checkpoints in a temp folder, the app pointed at
them, and a watch on its encoder. Test images: conftest.synthetic_image."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


import gradio as gr
import numpy as np
import pytest
import torch
from conftest import free_port
from PIL import Image

import explorer
import vle_core
from explorer import cache, settings, tokens_tab

N = 6  # tokens per test encode: enough to see the slider and edits work, cheap on 2 cores


def save_png(folder, name: str, array: np.ndarray) -> str:
    path = folder / name
    Image.fromarray(array).save(path)
    return str(path)


def make_checkpoints(folder) -> None:
    """vanilla-tiny and masked-tiny checkpoints, plus a broken folder, as the app would find them."""
    for name, preset in (("vanilla-tiny", "vanilla-tiny"), ("masked-tiny", "masked-tiny")):
        torch.manual_seed(0)
        model = vle_core.build_model(vle_core.preset(preset))
        vle_core.save_checkpoint(
            model,
            folder / name,
            f"# {name}\nAn untrained {preset} model for tests.",
            training={"data": "test", "steps": 0, "max_tokens": 4},
        )
    (folder / "broken").mkdir()
    (folder / "broken" / "config.json").write_text("{not json")


def pixels(view) -> np.ndarray:
    """The picture a handler returned for an image component: a PNG path, or an update holding one."""
    view = view["value"] if isinstance(view, dict) else view
    return np.asarray(Image.open(view))


class Select(gr.SelectData):
    """A click at (x, y) on an image, as gradio hands it to a select handler."""

    def __init__(self, x: int, y: int):
        super().__init__(None, {"index": [x, y], "value": None})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    make_checkpoints(folder)
    return folder


@pytest.fixture
def fresh(checkpoints, tmp_path, monkeypatch):
    """The app pointed at the test checkpoints and an empty cache; its files in tmp_path."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(settings, "DISPLAY_SIDE", 0)  # views at the image's own size (tests of enlarging set it back)
    # views as PNG, exact, to compare with the library (test_app_views tests JPEG)
    monkeypatch.setattr(settings, "LOSSY_VIEWS", False)
    monkeypatch.setattr(settings, "ENCODE_WORKER", False)  # encodes in-process; test_app_worker tests the worker
    explorer.configure(checkpoints=checkpoints, cache_dir=tmp_path / "cache", cache_mb=64)
    yield tmp_path
    explorer.configure()


@pytest.fixture
def encodes(monkeypatch) -> list:
    """The images the app's encoder runs on during a test, in order: a wrapper around the one
    function the encodings cache encodes through (models.encode_image, as cache.py calls it)."""
    images, encode_image = [], cache.encode_image

    def watched(vle, image, *args, **kwargs):
        images.append(image)
        return encode_image(vle, image, *args, **kwargs)

    monkeypatch.setattr(cache, "encode_image", watched)
    return images


def encode(path, checkpoint="vanilla-tiny", n=N, size=256):
    return tokens_tab.on_encode(path, n, size, checkpoint)


def serve(folder, max_size: int | None = 16):
    """(demo, url): the app on tiny checkpoints made in folder, served on a free loopback port with
    the bounded queue and the upload limit app.py uses. The caller closes it and calls configure()."""
    make_checkpoints(folder / "checkpoints")
    explorer.configure(checkpoints=folder / "checkpoints", cache_dir=folder / "cache", cache_mb=64)
    demo = explorer.queue(explorer.build_demo(), max_size=max_size)
    _, url, _ = demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_port(),
        quiet=True,
        max_file_size=settings.MAX_FILE_SIZE,
    )
    return demo, url
