"""`python -m vle_core.bench`: every figure is measured, and they add up."""

import ast

import pytest
import torch

import vle_core
from vle_core import bench


@pytest.fixture
def checkpoints(tmp_path):
    for name in ("vanilla-tiny-staged", "masked-tiny"):
        torch.manual_seed(0)
        vle_core.save_checkpoint(vle_core.build_model(vle_core.preset(name)), tmp_path / name, f"# {name}\n")
    return tmp_path


@pytest.mark.parametrize("name", ["vanilla-tiny-staged", "masked-tiny"])
def test_measure_counts_flops_that_scale_with_pixels_and_tokens(checkpoints, name):
    r = bench.measure(checkpoints / name, runs=1, busy=False)
    assert r["checkpoint"] == name and r["parameters"] == sum(
        p.numel() for p in vle_core.build_model(vle_core.preset(name)).parameters()
    )
    assert r["encoder_gflop"] > 0 and r["decoder_gflop"] > 0
    # 8 tokens at 256 px are 8 encoder and 8 decoder passes (a little more: the loop's own arithmetic is not counted)
    assert r["encode_gflop_256"] == pytest.approx(bench.N_TOKENS * (r["encoder_gflop"] + r["decoder_gflop"]), rel=0.02)
    assert r["encode_gflop_512"] == pytest.approx(4 * r["encode_gflop_256"], rel=0.02)  # convolutions: FLOPs per pixel
    assert all(
        r[k] > 0
        for k in (
            "encode_ms_256",
            "encode_ms_512",
            "decode_ms_256",
            "decode_ms_512",
            "train_image_tokens_per_s",
            "peak_mb",
            "scene_ms",
            "photo_ms",
        )
    )


def test_the_user_inputs_are_a_scene_and_the_photo_at_the_apps_size():
    inputs = bench.user_inputs()
    assert inputs["scene"].shape == (1, 3, bench.SCENE_SIDE, bench.SCENE_SIDE)
    assert max(inputs["photo"].shape[-2:]) == bench.PHOTO_SIDE
    assert all(-1 <= float(x.min()) and float(x.max()) <= 1 for x in inputs.values())


def test_beside_busy_runs_while_a_busy_process_works_and_stops_it(monkeypatch):
    started = []
    popen = bench.subprocess.Popen
    monkeypatch.setattr(bench.subprocess, "Popen", lambda *a, **k: started.append(popen(*a, **k)) or started[-1])
    monkeypatch.setattr(bench, "BUSY_START_S", 0.5)
    assert bench.beside_busy(lambda: started[0].poll()) is None  # the busy process runs during the work
    assert started[0].poll() is not None  # and is stopped after it


def test_the_command_prints_a_row_per_checkpoint(checkpoints, capsys):
    bench.main(["--checkpoints", str(checkpoints), "--runs", "1", "--threads", "1", "--no-busy"])
    out = capsys.readouterr().out
    assert "GFLOP/s" in out.splitlines()[0]
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    # the cost table, then the user encodes
    assert [row.split("`")[1] for row in rows] == [
        "masked-tiny",
        "vanilla-tiny-staged",
    ] * 2


def test_the_user_table_gives_the_slowdown_beside_the_busy_process():
    row = {"checkpoint": "m", "scene_ms": 50.0, "scene_busy_ms": 90.0, "photo_ms": 1000.0, "photo_busy_ms": 1500.0}
    assert bench.user_table([row]).splitlines()[-1] == "| `m` | 50 ms | 90 ms | 1.8x | 1000 ms | 1500 ms | 1.5x |"


def test_no_checkpoints_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint folders"):
        bench.main(["--checkpoints", str(tmp_path)])


def test_profile_shows_the_loop_and_what_s_did(checkpoints, capsys):
    bench.main(["--profile", str(checkpoints / "masked-tiny"), "--input", "noise", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.startswith("8 tokens of noise (256, 256):")
    work = ast.literal_eval(out.splitlines()[1].removeprefix("S's work: "))
    assert work["grows"] >= bench.N_TOKENS and work["labellings"] >= 1
    # the networks' convolutions, among the functions by their own time
    assert "torch.conv2d" in out and "tottime" in out


def test_profile_of_a_vanilla_vle_has_no_s(checkpoints, capsys):
    bench.main(["--profile", str(checkpoints / "vanilla-tiny-staged"), "--input", "scene", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.startswith("8 tokens of scene (64, 64):") and "S's work" not in out and "torch.conv2d" in out


def test_profile_of_what_is_not_a_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="bench: error: .*config.json"):
        bench.main(["--profile", str(tmp_path / "nothing")])
