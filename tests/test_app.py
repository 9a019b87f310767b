"""The app as a whole: its layout keeps the README's API names; its modules stay in their layers;
a session survives gradio's copy; the checkpoint menu finds every folder and says what each
holds; a broken checkpoint is a clear error."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import ast
import copy
from pathlib import Path

import app_helpers
import gradio as gr
import numpy as np
import pytest
import torch
from app_helpers import encode, pixels, save_png
from conftest import synthetic_image

import explorer
from explorer import edit_tab, export_tab, layout, models, quality_tab, settings, tokens_tab

checkpoints, fresh = app_helpers.checkpoints, app_helpers.fresh  # fixtures: tiny checkpoints, the app pointed at them


def test_blocks_build_with_stable_api_names(fresh):
    demo = layout.build_demo()
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    expected = {
        "encode",
        "token",
        "curve",
        "switch",
        "all_on",
        "solo",
        "strength",
        "move",
        "transplant",
        "scatter",
        "undo",
        "reset",
    }
    assert expected | {"export_gif", "export_strip", "export_tokens", "load_tokens", "compare"} <= names
    encode_fn = next(fn for fn in demo.fns.values() if fn.api_name == "encode")
    assert isinstance(encode_fn.inputs[0], gr.Image)  # the image comes first


def test_tabs_import_only_lower_modules_and_no_module_imports_private_names():
    """Each tab depends on the layers below it (pages, session, views, cache, ...), never on
    another tab; only layout.py composes them. Private names stay in their module."""
    for path in sorted((Path(explorer.__file__).parent).glob("*.py")):
        imports = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.level == 1
        ]
        modules = {node.module or alias.name for node in imports for alias in node.names}
        if path.stem != "layout":
            assert not {m for m in modules if m.endswith("_tab")}, f"{path.name} imports a tab"
        assert not [alias.name for node in imports for alias in node.names if alias.name.startswith("_")], path.name


def test_a_session_survives_gradios_deep_copy_whole(fresh):
    """gr.State deep-copies its value for each session: a Session (tuples, an image array, Tokens)
    copies into an independent one that shows the same."""
    state = edit_tab.on_move(2, 4, 0, encode(save_png(fresh, "a.png", synthetic_image(48, 64)))[0])[0]
    loaded = export_tab.on_load_tokens(export_tab.on_export_tokens(state), "vanilla-tiny")[0]  # its source: Tokens
    for session in (state, loaded):
        copied = copy.deepcopy(session)
        assert (copied.key, copied.n, copied.history) == (session.key, session.n, session.history)
        kind, data = copied.source
        if kind == "image":
            assert np.array_equal(data, session.source[1]) and not np.shares_memory(data, session.source[1])
        else:
            assert (
                torch.equal(data.latents, session.source[1].latents) and data.latents is not session.source[1].latents
            )
        assert np.array_equal(pixels(edit_tab.on_undo(copied)[1]), pixels(edit_tab.on_undo(session)[1]))


def test_checkpoint_menu(fresh, monkeypatch):
    names = models.checkpoint_names()
    assert names == ["broken", "masked-tiny", "vanilla-tiny"]
    summary = models.checkpoint_summary("masked-tiny")
    assert (
        summary.startswith("masked-tiny: masked, test, trained with ≤4 tokens")
        and "masked-tiny" in summary.split("(")[-1]
    )
    assert "unreadable" in models.checkpoint_summary("broken")
    assert models.default_checkpoint() == "broken"  # no vanilla-natural: the first folder
    monkeypatch.setattr(settings, "DEFAULT_CHECKPOINT", "masked-tiny")
    assert models.default_checkpoint() == "masked-tiny"


def test_examples_open_in_their_own_checkpoint_where_it_is_here(fresh, monkeypatch):
    rows = dict(tokens_tab.example_rows())
    assert rows and set(rows.values()) == {models.default_checkpoint()}  # none of the preferred ones here: the default
    monkeypatch.setattr(settings, "EXAMPLE_CHECKPOINTS", (("scene-", "masked-tiny"),))
    rows = {Path(path).name: name for path, name in tokens_tab.example_rows()}
    assert all(name == "masked-tiny" for file, name in rows.items() if file.startswith("scene-"))
    assert all(name == models.default_checkpoint() for file, name in rows.items() if not file.startswith("scene-"))
    demo = layout.build_demo()  # the examples fill the image and the checkpoint menu
    assert any(isinstance(block, gr.Dataset) and len(block.samples[0]) == 2 for block in demo.blocks.values())


def test_broken_checkpoint_is_a_clear_error_and_others_keep_working(fresh):
    path = save_png(fresh, "a.png", synthetic_image(64, 64))
    with pytest.raises(gr.Error, match="broken cannot be loaded"):
        encode(path, "broken")
    with pytest.raises(gr.Error, match="no checkpoint called"):
        encode(path, "../vanilla-tiny")
    assert encode(path)[0].checkpoint == "vanilla-tiny"


def test_the_menu_tells_a_staged_checkpoint_from_a_shared_one(tmp_path):
    explorer.configure(
        checkpoints=Path(__file__).resolve().parents[1] / "checkpoints", cache_dir=tmp_path / "cache", cache_mb=64
    )
    try:
        assert models.checkpoint_summary("vanilla-natural").startswith("vanilla-natural: staged vanilla, bsds")
        assert models.checkpoint_summary("vanilla-shared-natural").startswith("vanilla-shared-natural: vanilla, bsds")
    finally:
        explorer.configure()


def test_every_new_session_redraws_the_strip_the_donor_and_the_curve(fresh):
    """After each way a session starts (page load, upload, example, checkpoint switch, length mode, tokens
    file), the strip and Edit tab follow, then the donor (drawn again with the new checkpoint) and the curve."""
    demo = layout.build_demo()
    after = {}
    for fn in demo.fns.values():
        if fn.trigger_after is not None:
            after.setdefault(demo.fns[fn.trigger_after].fn, []).append(fn)
    starts = [
        fn for fn in demo.fns.values() if fn.fn in (tokens_tab.on_encode_in_page, export_tab.on_load_tokens_in_page)
    ]
    assert len(starts) == 6
    for start in starts:
        details = [fn for fn in after[start.fn] if fn.fn is tokens_tab.on_details]
        assert details and details[0].trigger_only_on_success
    follow = {fn.fn for fn in after[tokens_tab.on_details]}
    assert {edit_tab.on_donor, quality_tab.on_curve} <= follow


def test_the_page_opens_on_an_example_of_the_default_checkpoint(tmp_path):
    explorer.configure(
        checkpoints=Path(__file__).resolve().parents[1] / "checkpoints", cache_dir=tmp_path / "cache", cache_mb=64
    )
    try:
        assert Path(tokens_tab.default_example("vanilla-natural")) == settings.DEFAULT_EXAMPLE
        # a scene, not a photo, for the scenes model
        assert Path(tokens_tab.default_example("masked-scenes")).name.startswith("scene-")
        assert Path(tokens_tab.default_example("masked-natural")).name == "kodak-parrots.png"
        assert tokens_tab.default_example(None) is None
    finally:
        explorer.configure()
