"""The explorer served for real on a free port and driven through gradio_client, as the README's
API example does: upload and encode, step the slider, edit, export, load the export back."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import pytest
from app_helpers import save_png, serve
from conftest import synthetic_image
from gradio_client import Client, handle_file
from PIL import Image

import explorer
import vle_core
from explorer import models, settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own use of pandas


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, temp folder): the app on tiny checkpoints, closed after the module's tests."""
    folder = tmp_path_factory.mktemp("served")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(folder / "gradio"))  # the views and uploads, kept out of /tmp/gradio
    patch.setattr(settings, "DISPLAY_SIDE", 0)  # views at the image's own size
    patch.setattr(settings, "LOSSY_VIEWS", False)  # and exact (PNG), to compare a loaded decode with the edit
    demo, url = serve(folder)
    yield url, folder
    demo.close()
    explorer.configure()
    patch.undo()


def test_upload_encode_slide_edit_export_and_load_back(served):
    url, folder = served
    client = Client(url, verbose=False)
    image = save_png(folder, "scene.png", synthetic_image(64, 96))

    out = client.predict(handle_file(image), 6, 256, "masked-tiny", api_name="/encode")
    info, slider, recon = out[:3]  # the session state is not part of the API
    assert slider["maximum"] == 6 and "64 px, used as is" in info
    assert np.asarray(Image.open(recon)).shape == (64, 96, 3)

    # right after the encode: the API's encode lists the tokens to switch
    first = client.predict([1, 3], 1, api_name="/switch")
    assert "2 of 6 tokens on" in first[-1]
    steps = [client.predict(k, api_name="/token") for k in (1, 2, 3)]
    assert [s[-1].split("**")[1] for s in steps] == [
        "First 1 of 6 tokens",
        "First 2 of 6 tokens",
        "First 3 of 6 tokens",
    ]
    assert len({np.asarray(Image.open(s[0])).tobytes() for s in steps}) == 3

    before = np.asarray(Image.open(client.predict(api_name="/reset")[0]))
    moved = client.predict(2, 16, -8, api_name="/move")
    assert "moved by (+16, -8) px" in moved[-1]
    assert not np.array_equal(np.asarray(Image.open(moved[0])), before)
    switched = client.predict([1, 2, 3], 2, api_name="/switch")
    assert "3 of 6 tokens on" in switched[-1]

    figure, text = client.predict("PSNR", 10.0, api_name="/curve")
    assert "Tokens needed for PSNR" in text

    gif = client.predict(api_name="/export_gif")
    assert Image.open(gif).n_frames == 6 + 1  # the progression, then the edited image
    tokens_file = client.predict(api_name="/export_tokens")
    loaded = client.predict(handle_file(tokens_file), "masked-tiny", api_name="/load_tokens")
    assert loaded[1]["maximum"] == 3 and "3 tokens loaded" in loaded[0]
    # A tokens file holds the tokens, which decode additively; the page's object edits live in the picture.
    expected = np.clip(models.get_model("masked-tiny")[1].decode(vle_core.Tokens.load(tokens_file)) * 255 + 0.5, 0, 255)
    assert np.abs(np.asarray(Image.open(loaded[2])).astype(int) - expected.astype(int)).max() <= 2


def test_errors_reach_the_client_as_messages(served):
    url, folder = served
    client = Client(url, verbose=False)
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(Exception, match="not a readable image"):
        client.predict(handle_file(str(garbage)), 4, 256, "vanilla-tiny", api_name="/encode")
    with pytest.raises(Exception, match="Encode an image first"):
        client.predict(1, 8, 0, api_name="/move")
    client.predict(
        handle_file(save_png(folder, "b.png", synthetic_image(64, 64, seed=3))),
        4,
        256,
        "vanilla-tiny",
        api_name="/encode",
    )
    with pytest.raises(Exception, match="broken cannot be loaded"):
        client.predict(
            handle_file(save_png(folder, "b.png", synthetic_image(64, 64, seed=3))),
            4,
            256,
            "broken",
            api_name="/encode",
        )
    assert "First 2 of 4" in client.predict(2, api_name="/token")[-1]  # the session survived


def test_indices_out_of_range_are_named_through_the_api(served):
    url, folder = served
    client = Client(url, verbose=False)
    client.predict(
        handle_file(save_png(folder, "c.png", synthetic_image(64, 64, seed=4))),
        4,
        256,
        "vanilla-tiny",
        api_name="/encode",
    )
    # gradio checks the slider's range for this session
    with pytest.raises(Exception, match="greater than maximum value 4"):
        client.predict(99, api_name="/token")
    # past any slider's range: gradio's own message
    with pytest.raises(Exception, match="Value 99 is greater than maximum value 16"):
        client.predict(99, 3, 3, api_name="/move")
    # in the range, past this image's tokens: ours
    with pytest.raises(Exception, match="There is no token 10 to move: the tokens are 1 to 4"):
        client.predict(10, 3, 3, api_name="/move")
    with pytest.raises(Exception, match=r"A move of \(\+300, \+0\) px leaves the 64×64 image"):
        client.predict(2, 300, 0, api_name="/move")
    with pytest.raises(Exception, match="greater than maximum value 32"):
        client.predict(
            handle_file(save_png(folder, "c.png", synthetic_image(64, 64, seed=4))),
            1000,
            256,
            "vanilla-tiny",
            api_name="/encode",
        )
    assert "First 2 of 4" in client.predict(2, api_name="/token")[-1]  # the session goes on


def test_encode_until_a_target_through_the_api(served):
    url, folder = served
    client = Client(url, verbose=False)
    image = handle_file(save_png(folder, "until.png", synthetic_image(64, 64, seed=7)))
    info, slider = client.predict(image, 4, 256, "vanilla-tiny", "Until PSNR", 60, api_name="/encode")[:2]
    assert (
        f"PSNR 60 dB not reached in {settings.N_TOKENS_MAX} tokens" in info
        and slider["maximum"] == settings.N_TOKENS_MAX
    )
    # the length's defaults: N tokens
    info, slider = client.predict(image, 4, 256, "vanilla-tiny", api_name="/encode")[:2]
    assert slider["maximum"] == 4 and "to reach" not in info
    with pytest.raises(Exception, match="target PSNR is between"):
        client.predict(image, 4, 256, "vanilla-tiny", "Until PSNR", 200, api_name="/encode")
