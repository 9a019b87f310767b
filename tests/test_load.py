"""Many users at once, the short form of benchmarks/loadtest.py (two sessions, one round, tiny checkpoints),
its answer checks shown to catch a crossed answer, and the bounded queue's "busy" refusal."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_helpers import make_checkpoints, save_png, serve
from conftest import synthetic_image
from gradio_client import Client, handle_file

import explorer
from explorer.layout import BUSY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import loadtest  # noqa: E402 (the script in benchmarks/)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own use of pandas


def small_run(tmp_path) -> list[str]:
    """loadtest's arguments for two sessions, one round, 4 tokens at 128 px on tiny checkpoints."""
    sessions = ["--sessions", "2", "--rounds", "1", "--size", "128", "--tokens", "4"]
    checkpoints = ["--checkpoint", "vanilla-tiny", "--checkpoints", str(tmp_path / "checkpoints")]
    return [*sessions, *checkpoints, "--time-limit", "300"]


@pytest.mark.parametrize("client", ["page", "gradio_client"])
def test_two_sessions_at_once_get_their_own_right_answers(tmp_path, capsys, client):
    make_checkpoints(tmp_path / "checkpoints")
    code = loadtest.main([*small_run(tmp_path), "--client", client])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "load-2: 2 sessions at once, 14 requests" in printed and "errors 0; wrong answers 0" in printed
    assert "server peak RSS" in printed


def test_the_checks_catch_an_answer_from_another_session():
    step = ("token", 2)
    mine = loadtest.Answer(step, (64, 64, 3), np.zeros((8, 8, 3)), "**First 2 of 4**")
    theirs = loadtest.Answer(step, (56, 64, 3), np.full((8, 8, 3), 90.0), "**First 2 of 4**")
    brighter = loadtest.Answer(step, (64, 64, 3), np.full((8, 8, 3), 9.0), "**First 2 of 4**")
    other_psnr = loadtest.Answer(("move", 1, 2, 3), psnr=20.0)
    reference = loadtest.Run(answers=[mine, loadtest.Answer(("move", 1, 2, 3), psnr=24.0)])
    assert not loadtest.compare(0, loadtest.Run(answers=list(reference.answers)), reference)
    assert "shape" in loadtest.compare(0, loadtest.Run(answers=[theirs]), reference)[0]
    assert "differs" in loadtest.compare(0, loadtest.Run(answers=[brighter]), reference)[0]
    assert "PSNR" in loadtest.compare(0, loadtest.Run(answers=[mine, other_psnr]), reference)[0]


def test_past_the_queue_bound_a_request_is_refused_as_busy(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    demo, url = serve(tmp_path, max_size=0)  # every request finds the queue full
    try:
        with pytest.raises(Exception, match="Queue is full! Please try again"):
            Client(url, verbose=False).predict(
                handle_file(save_png(tmp_path, "a.png", synthetic_image(64, 64))),
                4,
                256,
                "vanilla-tiny",
                api_name="/encode",
            )
        response = httpx.post(
            url + "gradio_api/queue/join",
            json={"data": [2], "fn_index": 0, "session_hash": "busy-test", "trigger_id": None},
        )
        assert response.status_code == 503
        assert response.json()["detail"] == BUSY.format(waiting=0)
    finally:
        demo.close()
        explorer.configure()


def test_a_browser_steps_the_slider_beside_the_other_sessions(tmp_path, capsys):
    from test_browser import CHROMIUM, need_browser

    need_browser()
    make_checkpoints(tmp_path / "checkpoints")
    code = loadtest.main([*small_run(tmp_path), "--browser", CHROMIUM, "--browser-steps", "4"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert (
        "browser-2: a browser page (vanilla-tiny at the page's defaults) and 1 sessions at once" in printed
        and "(n=4)" in printed
    )
