"""What a Hugging Face Space needs from this repository: large files in Git LFS, README front
matter that parses and names the app, model cards with Hub metadata, and an app that listens where
a Space connects (GRADIO_SERVER_NAME=0.0.0.0, port 7860, both set by the Space)."""

import ast
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
HUB_LIMIT = 10 * 1024 * 1024  # the Hub refuses a plain git file over 10 MB
BINARY_LIMIT = 1024 * 1024  # and a binary file over 1 MB that is not in LFS


def front_matter(text: str) -> tuple[dict, str]:
    """(the YAML block between the first two '---' lines, the rest)."""
    assert text.startswith("---\n"), "no front matter: the file must open with a '---' line"
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (or no git): nothing to check against .gitattributes")
    return [name for name in out.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def in_lfs(paths: list[str]) -> dict[str, bool]:
    out = subprocess.run(
        ["git", "check-attr", "-z", "filter", "--", *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    fields = out.split("\0")
    return {fields[i]: fields[i + 2] == "lfs" for i in range(0, len(fields) - 2, 3)}


def is_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(8000)  # git's own test


def test_every_large_tracked_file_is_in_lfs():
    files = tracked_files()
    sizes = {name: (ROOT / name).stat().st_size for name in files}
    large = [
        name for name in files if sizes[name] > HUB_LIMIT or (sizes[name] > BINARY_LIMIT and is_binary(ROOT / name))
    ]
    assert large, "no file over the limits: check that this test still sees the weights"
    covered = in_lfs(large)
    missing = [name for name in large if not covered.get(name)]
    assert not missing, f"add an LFS rule to .gitattributes for: {missing}"


def test_weights_are_in_lfs_wherever_they_are_added():
    tracked_files()
    assert all(in_lfs(["checkpoints/new/model.safetensors", "runs/x/model/model.safetensors"]).values())


def test_readme_front_matter_is_a_space_config():
    meta, body = front_matter((ROOT / "README.md").read_text())
    import gradio

    assert meta["sdk"] == "gradio" and str(meta["sdk_version"]) == gradio.__version__
    assert (ROOT / meta["app_file"]).is_file()
    assert isinstance(meta["python_version"], str)  # 3.10 unquoted would be read as 3.1
    assert meta["license"] == "mit" and "MIT License" in (ROOT / "LICENSE").read_text()
    assert len(meta["short_description"]) <= 60 and body.lstrip().startswith("# ")


CARDS = sorted(p / "README.md" for p in (ROOT / "checkpoints").iterdir() if (p / "config.json").is_file())


@pytest.mark.parametrize("card", CARDS, ids=[p.parent.name for p in CARDS])
def test_model_card_has_hub_metadata_and_a_short_body(card):
    meta, body = front_matter(card.read_text())
    assert meta["license"] == "mit" and meta["library_name"] and meta["tags"]
    results = meta["model-index"][0]["results"]
    assert meta["model-index"][0]["name"] == card.parent.name
    assert all(
        set(m) == {"type", "name", "value"} and isinstance(m["value"], float) for r in results for m in r["metrics"]
    )
    assert len(body.encode()) <= 3300, "a card's body is at most about 3 KB: history goes to docs/experiments.md"
    assert f'load_vle("checkpoints/{card.parent.name}")' in body
    assert "/work/" not in body and "/tmp" not in body and "/home/" not in body


def test_app_leaves_host_and_port_to_the_environment():
    """A Space sets GRADIO_SERVER_NAME=0.0.0.0 and serves port 7860: launch() must not override them."""
    tree = ast.parse((ROOT / "app.py").read_text())
    launches = [
        node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "launch"
    ]
    assert len(launches) == 1
    assert not {kw.arg for kw in launches[0].keywords} & {"server_name", "server_port", "share"}


def listening_on_all_interfaces(port: int) -> bool:
    """Whether /proc/net/tcp lists a socket listening on 0.0.0.0:port (state 0A)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(row.split()[1] == f"00000000:{port:04X}" and row.split()[3] == "0A" for row in rows)


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads Linux's /proc/net/tcp")
def test_app_py_serves_on_all_interfaces_as_a_space_runs_it(tmp_path):
    from app_helpers import make_checkpoints

    make_checkpoints(tmp_path / "checkpoints")
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "0.0.0.0",  # what a Space sets
        "GRADIO_SERVER_PORT": str(port),  # a Space's is 7860; a free one here
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "VLE_CHECKPOINTS": str(tmp_path / "checkpoints"),
        "VLE_CACHE_DIR": str(tmp_path / "cache"),
    }
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None and not listening_on_all_interfaces(port):
            time.sleep(0.5)
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        assert listening_on_all_interfaces(port), "app.py did not listen on 0.0.0.0 within 180 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200 and b"gradio" in page.read().lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
