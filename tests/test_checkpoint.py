"""Checkpoint folders: exact round trips, and a clear error for each way a folder can be wrong."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_image

import vle_core

CARD = "# tiny\nUntrained, for tests.\n"


@pytest.fixture
def saved(tmp_path, tiny_vle):
    folder = tmp_path / "ckpt"
    vle_core.save_checkpoint(tiny_vle, folder, CARD, training={"max_tokens": 4}, dtype=torch.float32)
    return folder


def test_save_then_load_gives_identical_outputs(saved, tiny_vle):
    loaded = vle_core.load_vle(saved, device="cpu")
    original, restored = tiny_vle.model.state_dict(), loaded.model.state_dict()
    assert original.keys() == restored.keys() and all(torch.equal(original[k], restored[k]) for k in original)
    tiny_vle.model.to(memory_format=torch.channels_last)  # the layout load_vle gives, so the same kernels run
    image = synthetic_image(40, 56)
    a, b = tiny_vle.encode(image, 4), loaded.encode(image, 4)
    np.testing.assert_array_equal(a.reconstructions, b.reconstructions)
    assert loaded.kind == tiny_vle.kind and loaded.config == tiny_vle.config
    assert loaded.card == CARD and loaded.trained_tokens == 4
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_float16_weights_change_outputs_negligibly(tmp_path, tiny_vle):
    vle_core.save_checkpoint(tiny_vle, tmp_path / "half", CARD)
    loaded = vle_core.load_vle(tmp_path / "half", device="cpu")
    image = synthetic_image(40, 56)
    assert np.abs(tiny_vle.encode(image, 3).reconstructions - loaded.encode(image, 3).reconstructions).max() < 0.02


def test_auto_device_is_the_best_available(saved):
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert vle_core.load_vle(saved).device.type == expected


def _config(folder):
    return json.loads((folder / "config.json").read_text())


def _write_config(folder, meta):
    (folder / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "README.md"])
def test_missing_file(saved, name):
    (saved / name).unlink()
    with pytest.raises(ValueError, match=f"missing {name}"):
        vle_core.load_vle(saved)


def test_not_a_folder(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint folder"):
        vle_core.load_vle(tmp_path / "nowhere")


def test_invalid_json(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        vle_core.load_vle(saved)


def test_unknown_config_key(saved):
    meta = _config(saved)
    meta["config"]["wings"] = 2
    _write_config(saved, meta)
    with pytest.raises(ValueError, match=r"unknown config keys .*wings"):
        vle_core.load_vle(saved)


def test_unknown_kind(saved):
    meta = _config(saved)
    meta["kind"] = "diffusion"
    _write_config(saved, meta)
    with pytest.raises(ValueError, match="unknown model kind 'diffusion'"):
        vle_core.load_vle(saved)


def test_wrong_tensor_shapes(saved):
    meta = _config(saved)
    meta["config"]["base_channels"] = 12  # the weights were made for 8
    _write_config(saved, meta)
    with pytest.raises(ValueError, match=r"tensor \S+ has shape"):
        vle_core.load_vle(saved)


def test_weights_of_the_other_kind(saved):
    meta = _config(saved)
    other = "masked" if meta["kind"] == "vanilla" else "vanilla"
    meta["kind"] = other
    meta["config"] = vle_core.preset(f"{other}-tiny").to_dict()
    _write_config(saved, meta)
    with pytest.raises(ValueError, match="does not match its config: missing tensors"):
        vle_core.load_vle(saved)


def test_truncated_weights(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="unreadable"):
        vle_core.load_vle(saved)


def test_a_hub_id_without_network_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="not a folder"):
        vle_core.load_vle("nobody/no-such-vle")


SHIPPED = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "checkpoints").iterdir() if (p / "config.json").is_file()
)


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_checkpoint_loads_encodes_and_carries_its_figures(folder):
    vle = vle_core.load_vle(folder, device="cpu")
    encoding = vle.encode(synthetic_image(40, 48), 3)
    assert encoding.reconstructions.shape == (3, 40, 48, 3) and np.isfinite(encoding.reconstructions).all()
    assert (encoding.masks is not None) == folder.name.startswith("masked")
    assert vle.trained_tokens and "## Measured on held-out data" in vle.card


def test_a_cards_command_line_shows_the_note_once_in_the_card_not_twice():
    from vle_core.ship import shown_command

    line = shown_command(
        ["runs/a", "checkpoints/b", "--suite", "kodak", "--note", "The bar's not met.\nTried x.", "--title", "a b"]
    )
    assert line == "runs/a checkpoints/b --suite kodak --note ... --title 'a b'"
    assert shown_command(["r", "o", "--note=Long text"]) == "r o --note=..."


def test_a_shipped_checkpoint_loads_by_name_from_any_folder(tmp_path):
    assert "vanilla-natural" in vle_core.shipped_checkpoints()
    root = Path(__file__).resolve().parents[1]
    code = (
        "import numpy, vle_core; v = vle_core.load_vle('masked-scenes', device='cpu'); "
        "print(v.kind, len(v.encode(v.decode(v.encode(numpy.zeros((16, 16, 3), 'uint8'), 2).tokens), 1)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["masked", "1"]


def test_a_mistyped_local_folder_is_one_line_that_names_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    for wrong in ("checkpoints/vanila-natural", "vanila-natural", tmp_path / "nowhere", "./x/y"):
        with pytest.raises(ValueError) as error:
            vle_core.load_vle(wrong)
        message = str(error.value)
        # not looked up on the Hub
        assert "\n" not in message and f"no checkpoint folder {wrong}" in message and "vanilla-natural" in message
