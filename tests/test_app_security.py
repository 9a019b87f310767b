"""Security: gradio's file route serves the app's own outputs and nothing else (path traversal
tried in every spelling), uploads past the size limit are refused, and nothing is ever unpickled."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import http.client
import re
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pytest
from app_helpers import save_png, serve
from conftest import synthetic_image
from gradio_client import Client, handle_file

import explorer
from explorer import settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own use of pandas
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(folder / "gradio"))
    demo, url = serve(folder)
    yield url, folder
    demo.close()
    explorer.configure()
    patch.undo()


def get(url: str, path: str) -> tuple[int, bytes]:
    """A GET with the path sent exactly as written (http.client does not normalise ../ or %2e)."""
    where = urlparse(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def test_the_file_route_serves_outputs_and_nothing_else(served):
    url, folder = served
    client = Client(url, verbose=False, download_files=False)
    out = client.predict(
        handle_file(save_png(folder, "a.png", synthetic_image(64, 64))), 4, 256, "vanilla-tiny", api_name="/encode"
    )
    view = out[2]["path"]  # a view the app wrote, on the server
    status, body = get(url, "/gradio_api/file=" + quote(view))
    assert status == 200 and body[:3] == b"\xff\xd8\xff"  # the route works for the app's outputs (a JPEG view)

    secrets = {
        "/etc/passwd": b"root:",
        str(ROOT / "README.md"): b"VLE",
        str(ROOT / "app.py"): b"build_demo",
        str(folder / "checkpoints" / "vanilla-tiny" / "config.json"): b"vle-checkpoint",
    }
    views = str(Path(view).parent)
    up = "../" * 12
    for secret, marker in secrets.items():
        relative = os.path.relpath(secret, ROOT)
        spellings = [
            secret,
            quote(secret, safe=""),
            relative,
            views + "/" + up + secret.lstrip("/"),
            views + "/" + quote(up + secret.lstrip("/"), safe=""),
            views + "/" + (up + secret.lstrip("/")).replace("../", "%2e%2e/"),
            views + "/" + (up + secret.lstrip("/")).replace("../", "%252e%252e%252f"),
            views + "/" + (up + secret.lstrip("/")).replace("../", "..%5c"),
            views + "/" + (up + secret.lstrip("/")).replace("../", "....//"),
        ]
        for spelling in spellings:
            for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/gradio_api/file=/"):
                status, body = get(url, route + spelling)
                assert marker not in body, f"{route}{spelling} served {secret}"
                assert status >= 400, f"{route}{spelling} answered {status}"


def test_uploads_past_the_limit_are_refused(served):
    url, folder = served
    big = folder / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(26 * 2**20))  # 26 MB, past settings.MAX_FILE_SIZE
    assert settings.MAX_FILE_SIZE == "25mb"
    # gradio_client checks first
    with pytest.raises(Exception, match="exceeds the maximum file size of 26214400 bytes"):
        Client(url, verbose=False).predict(handle_file(str(big)), 4, 256, "vanilla-tiny", api_name="/encode")
    with open(big, "rb") as f:  # a client that does not: the server refuses it
        response = httpx.post(url + "gradio_api/upload", files={"files": ("big.png", f, "image/png")}, timeout=120)
    assert response.status_code == 413, response.text
    small = httpx.post(
        url + "gradio_api/upload",
        files={"files": ("a.png", open(save_png(folder, "s.png", synthetic_image(64, 64)), "rb"), "image/png")},
    )
    assert small.status_code == 200


UNPICKLING = [
    (r"torch\.load\((?!.*weights_only\s*=\s*True)", "torch.load without weights_only=True (on its line)"),
    (r"\bpickle\.loads?\(|\bcPickle\b|\bdill\b|\bjoblib\.load\(", "pickle"),
    (r"allow_pickle\s*=\s*True", "numpy with allow_pickle=True"),
    (r"\bshelve\.open\(|\bmarshal\.loads?\(", "shelve or marshal"),
    (
        r"diskcache\.(Cache|FanoutCache)\((?!.*disk=BytesOnly)",
        "a diskcache without disk=BytesOnly (its default unpickles)",
    ),
]


def test_nothing_is_ever_unpickled():
    """The app and the library load weights from safetensors, tokens from safetensors and cache
    entries from numpy archives; nothing anywhere calls a loader that unpickles."""
    files = [ROOT / "app.py", *ROOT.glob("benchmarks/*.py"), *ROOT.glob("explorer/*.py"), *ROOT.glob("vle_core/*.py")]
    found = []
    for path in files:
        text = path.read_text()
        for pattern, what in UNPICKLING:
            found += [f"{path.relative_to(ROOT)}: {what}" for _ in re.finditer(pattern, text)]
    assert not found, found
