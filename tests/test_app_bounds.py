"""Every bound on what one request or one session may cost: edits, donors, transplanted tokens,
the session state's memory, views and exports on disk, the exported GIF's size, state lifetime."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path

import app_helpers
import gradio as gr
import pytest
from app_helpers import N, encode, save_png
from conftest import synthetic_image
from PIL import Image

from explorer import edit_tab, export_tab, images, layout, settings, tokens_tab

checkpoints, fresh = app_helpers.checkpoints, app_helpers.fresh  # fixtures: tiny checkpoints, the app pointed at them
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def state(fresh):
    return encode(save_png(fresh, "a.png", synthetic_image(32, 40)))[0]


def test_edits_per_session_are_bounded(state, monkeypatch):
    monkeypatch.setattr(settings, "MAX_EDITS", 3)
    for dx in (1, 2, 3):
        state = edit_tab.on_move(2, dx, 0, state)[0]
    with pytest.raises(gr.Error, match="3 edits, the most it keeps"):
        edit_tab.on_move(2, 4, 0, state)
    state = edit_tab.on_undo(state)[0]
    assert len(edit_tab.on_move(2, 4, 0, state)[0].history) == 3


def test_donors_and_transplanted_tokens_are_bounded(fresh, state, monkeypatch):
    monkeypatch.setattr(settings, "MAX_DONORS", 2)
    donors = [save_png(fresh, f"donor{i}.png", synthetic_image(32, 40, seed=10 + i)) for i in range(3)]
    edit_tab.on_donor(donors[2], 1, state)  # looked at, not used: not kept
    for donor in donors[:2]:
        state = edit_tab.on_transplant(donor, 1, state)[0]
    assert len(state.sources) == 3
    with pytest.raises(gr.Error, match="2 donor images, the most it keeps"):
        edit_tab.on_transplant(donors[2], 1, state)
    assert len(edit_tab.on_transplant(donors[0], 2, state)[0].history) == 3  # a kept donor again is fine
    limit = settings.WORKING_SIZE_RANGE[1] ** 2 * 3 * (1 + settings.MAX_DONORS)
    assert sum(source.nbytes for kind, source in state.sources.values()) <= limit  # the state's pictures, bounded

    monkeypatch.setattr(settings, "MAX_EDITED_TOKENS", N + 1)
    state = edit_tab.on_reset(state)[0]
    state = edit_tab.on_transplant(donors[0], 1, state)[0]
    with pytest.raises(gr.Error, match=f"At most {N + 1} tokens"):
        edit_tab.on_transplant(donors[0], 2, state)


def test_view_files_are_bounded_and_a_removed_view_is_drawn_again(state, monkeypatch):
    monkeypatch.setattr(settings, "MAX_VIEW_FILES", 5)
    recon = tokens_tab.on_token(2, state)[0]
    for _ in range(2 * images.PRUNE_EVERY):  # whatever this process wrote before, two prunings
        images.view_file(synthetic_image(16, 16))
    folder = Path(recon).parent
    assert len(list(folder.iterdir())) <= 5 + images.PRUNE_EVERY  # pruned to the newest 5 every PRUNE_EVERY views
    assert not Path(recon).exists()
    again = tokens_tab.on_token(2, state)[0]
    assert Path(again).exists() and again != recon


def test_export_files_are_bounded(fresh, state, monkeypatch):
    monkeypatch.setattr(settings, "EXPORTS", fresh / "exports")
    monkeypatch.setattr(settings, "MAX_EXPORTS", 2)
    for _ in range(5):
        assert Path(export_tab.on_export_tokens(state)).exists()
    assert len(list((fresh / "exports").iterdir())) == 3  # the 2 kept and the new one


def test_the_exported_gif_is_bounded(fresh, monkeypatch):
    monkeypatch.setattr(settings, "MAX_GIF_PIXELS", 40_000)
    state = encode(save_png(fresh, "big.png", synthetic_image(200, 300)), size=768)[0]
    with Image.open(export_tab.on_export_gif(state)) as gif:
        frames, (width, height) = gif.n_frames, gif.size
    assert frames == N
    assert (width - 12) * (height - 28) * frames <= 40_000  # two pictures a frame, margins aside
    assert width > 12 and height > 28


def test_session_state_expires_and_sessions_are_capped(fresh):
    demo = layout.build_demo()
    states = [block for block in demo.blocks.values() if isinstance(block, gr.State)]
    assert states and all(s.time_to_live == settings.STATE_TTL_S for s in states)
    assert "state_session_capacity=settings.MAX_SESSIONS" in (ROOT / "app.py").read_text()
    assert "queue(build_demo())" in (ROOT / "app.py").read_text()
