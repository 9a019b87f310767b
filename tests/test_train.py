"""Training: the token curriculum, exact resumption, and DDP under torchrun on the CPU."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

import vle_core
from vle_core.train import TrainConfig, token_count, train

TINY = dict(
    preset="vanilla-tiny",
    data="scenes",
    batch=4,
    crop=32,
    max_tokens=3,
    tokens_every=2,
    warmup=2,
    log_every=1,
    save_every=3,
    sample_every=3,
)


def test_token_curriculum_starts_low_moves_up_and_is_seeded():
    cfg = TrainConfig(max_tokens=6, tokens_every=100)
    early = [token_count(s, cfg, low=2) for s in range(0, 50)]
    late = [token_count(s, cfg, low=2) for s in range(1000, 1050)]
    assert min(early + late) >= 2 and max(early + late) <= 6
    assert np.mean(early) < 3 < np.mean(late)
    assert early == [token_count(s, cfg, low=2) for s in range(0, 50)]


def test_resuming_continues_exactly_as_an_uninterrupted_run(tmp_path):
    train(TrainConfig(**TINY, out=str(tmp_path / "straight"), steps=6))
    train(TrainConfig(**TINY, out=str(tmp_path / "resumed"), steps=3))
    with pytest.raises(SystemExit, match="--resume"):
        train(TrainConfig(**TINY, out=str(tmp_path / "resumed"), steps=6))
    train(TrainConfig(**TINY, out=str(tmp_path / "resumed"), steps=6), resume=True)
    a = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_a_run_leaves_a_loadable_checkpoint_samples_and_a_log(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(**{**TINY, "preset": "masked-tiny"}, out=str(out), steps=3))
    vle = vle_core.load_vle(out / "model", device="cpu")
    assert vle.kind == "masked" and vle.trained_tokens == 3
    assert (out / "samples" / "step0000003.png").is_file()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in records if "loss" in r)


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="torchrun not installed",
)
def test_torchrun_two_processes_stay_in_sync_and_only_rank_0_writes(tmp_path):
    out = tmp_path / "ddp"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY, "steps": 6}.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "vle_core.train", f"--out={out}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).parents[1],
    )
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    saves = [r for r in records if r.get("event") == "save"]
    assert [r["step"] for r in saves] == [3, 6]  # one line per save: rank 1 wrote nothing
    for r in saves:
        assert len(r["rank_checksums"]) == 2 and r["rank_checksums"][0] == r["rank_checksums"][1]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl", "model", "samples", "state.pt", "train_config.json"]
    assert vle_core.load_vle(out / "model", device="cpu").training["batch"] == 8  # 4 per process x 2


def test_init_starts_a_new_run_from_a_checkpoints_weights(tmp_path):
    train(TrainConfig(**TINY, out=str(tmp_path / "first"), steps=3))
    train(
        TrainConfig(
            **{**TINY, "lr": 0.0}, out=str(tmp_path / "second"), steps=1, init=str(tmp_path / "first" / "model")
        )
    )
    a = load_file(tmp_path / "first" / "model" / "model.safetensors")
    b = load_file(tmp_path / "second" / "model" / "model.safetensors")
    # learning rate 0: the weights it started from
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    with pytest.raises(SystemExit, match="different model"):
        train(
            TrainConfig(
                **{**TINY, "preset": "masked-tiny"},
                out=str(tmp_path / "third"),
                steps=1,
                init=str(tmp_path / "first" / "model"),
            )
        )


def test_ship_evaluates_a_run_and_writes_a_card_that_explains_its_figures(tmp_path):
    from vle_core.ship import main as ship

    train(TrainConfig(**{**TINY, "preset": "masked-tiny"}, out=str(tmp_path / "run"), steps=2))
    ship([str(tmp_path / "run"), str(tmp_path / "shipped"), "--suite", "scenes", "--tokens", "2", "--title", "tiny"])
    card = (tmp_path / "shipped" / "README.md").read_text()
    meta, body = card.removeprefix("---\n").split("\n---\n", 1)
    meta = yaml.safe_load(meta)  # the Hugging Face card metadata
    assert (
        meta["license"] == "mit"
        and meta["datasets"] == ["generated-scenes"]
        and meta["model-index"][0]["name"] == "shipped"
    )
    figures = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert f"- fg_ari: {figures['fg_ari']:.3f}" in body  # the metadata holds the figures the card shows
    assert body.lstrip().startswith("# tiny") and "## Measured on held-out data" in body
    assert 'load_vle("checkpoints/shipped")' in body and len(body.encode()) <= 3300
    assert "- fg_ari: " in card and "decoded masks" in card  # the figure, and what it means
    assert "Patch-PCA" not in card  # the Kodak suite's footnote belongs to the Kodak suite
    assert all(t.dtype == torch.float16 for t in load_file(tmp_path / "shipped" / "model.safetensors").values())
    assert vle_core.load_vle(tmp_path / "shipped", device="cpu").kind == "masked"


def test_shipping_as_a_preset_leaves_out_an_unused_block_and_refuses_a_model_it_is_not_part_of(tmp_path):
    from vle_core.ship import as_preset

    common = dict(data="scenes", batch=2, crop=32, max_tokens=2, warmup=1, save_every=1, sample_every=1)
    train(TrainConfig(preset="vanilla-tiny-staged-context", **common, steps=1, out=str(tmp_path / "run")))
    run, _ = vle_core.read_checkpoint(tmp_path / "run" / "model")
    shipped = as_preset(run, "vanilla-tiny-staged-film")
    assert shipped.config.context == 0 and shipped.state_dict()
    assert all(torch.equal(weight, run.state_dict()[name]) for name, weight in shipped.state_dict().items())
    assert set(run.state_dict()) - set(shipped.state_dict()) == {
        name for name in run.state_dict() if ".context." in name
    }
    with pytest.raises(ValueError, match="not a part"):
        as_preset(run, "vanilla-cpu-light-film")  # wider: its weights are not the run's
    with pytest.raises(ValueError, match="not a part"):
        as_preset(run, "masked-tiny")


def test_resume_from_the_command_line_keeps_the_runs_saved_settings(tmp_path):
    from vle_core.train import main

    out = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    main([*flags, f"--out={out}", "--steps=2"])
    main([f"--out={out}", "--resume", "--steps=4"])  # nothing but the folder and the new length
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["steps"] == 4 and saved["batch"] == TINY["batch"] and saved["preset"] == TINY["preset"]
    assert [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r] == [
        1,
        2,
        3,
        4,
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--resume"], "no run to resume"),
        (["--preset=nope"], "unknown preset 'nope'"),
        (["--data=bsds", "--steps=1"], "Set VLE_DATA"),
        (["--precision=fp8", "--data=scenes", "--steps=1"], "--precision must be"),
        (["--token-weights=1,x", "--data=scenes", "--steps=1"], "--token-weights must be comma-separated numbers"),
        (["--token-weights=-1,1", "--data=scenes", "--steps=1"], "none negative"),
        (
            ["--token-weights=0.5", "--preset=masked-tiny", "--data=scenes", "--steps=1"],
            "weighs a vanilla VLE's token counts",
        ),
    ],
)
def test_command_line_mistakes_are_one_line_errors(argv, message, tmp_path, monkeypatch, capsys):
    from vle_core.train import main

    monkeypatch.setenv("VLE_DATA", str(tmp_path / "no-data-here"))
    with pytest.raises(SystemExit) as exit:
        main([*argv, f"--out={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip()
    assert exit.value.code == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_token_weights_weigh_each_counts_term_and_the_last_weight_repeats():
    """The loss is the weighted mean of the counts' log-MSEs: a count weighted 0 has no say."""
    from vle_core.losses import vanilla_loss
    from vle_core.train import parse_weights

    torch.manual_seed(0)
    model = vle_core.build_model(vle_core.preset("vanilla-tiny", psnr_loss=True))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = model(x, 3)
    log_mses = torch.stack([(x - r).pow(2).flatten(1).mean(1).log().mean() for r in out.reconstructions])
    assert torch.allclose(vanilla_loss(x, out, True)["loss"], log_mses.mean())
    # 1 repeats for count 3
    assert torch.allclose(vanilla_loss(x, out, True, parse_weights("0,1"))["loss"], log_mses[1:].mean())
    assert torch.allclose(vanilla_loss(x, out, True, parse_weights("1,0"))["loss"], log_mses[0])
    # a weighted mean
    assert torch.allclose(vanilla_loss(x, out, True, parse_weights("2,2,2"))["loss"], log_mses.mean())
    assert parse_weights(" ") == ()


def test_minutes_stops_early_and_saves_a_resumable_state(tmp_path):
    """A lent GPU's time runs out before --steps: the run stops, saved, and resumes from there."""
    out = tmp_path / "run"
    train(TrainConfig(**TINY, out=str(out), steps=1000, minutes=1e-6))
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 1 and (out / "model" / "model.safetensors").is_file()
    train(TrainConfig(**TINY, out=str(out), steps=2), resume=True)
    assert torch.load(out / "state.pt", weights_only=True)["step"] == 2


@pytest.mark.parametrize("preset", ["vanilla-tiny", "masked-tiny"])
def test_bf16_autocast_and_dataloader_workers_train(preset, tmp_path):
    """The GPU run's code paths (bf16 autocast, a DataLoader with workers), exercised on the CPU."""
    out = tmp_path / "run"
    train(TrainConfig(**{**TINY, "preset": preset}, out=str(out), steps=3, precision="bf16", workers=1))
    losses = [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert all(t.dtype == torch.float32 for t in load_file(out / "model" / "model.safetensors").values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_with_bf16_channels_last_workers_and_compile(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(**{**TINY, "data": "scenes"}, out=str(out), steps=3, device="cuda", compile=True))
    vle = vle_core.load_vle(out / "model", device="cuda")
    encoding = vle.encode(np.random.default_rng(0).random((32, 32, 3), dtype=np.float32), 3)
    assert np.isfinite(encoding.reconstructions).all()


def test_a_non_finite_loss_stops_the_run_unsaved_with_one_line(tmp_path, monkeypatch, capsys):
    """A loss that turns nan stops training at that step; state.pt keeps the last save, from which
    --resume continues."""
    import vle_core.train as training

    calls = []

    def nan_from_the_fifth(*args, **kwargs):
        losses = vle_core.vle_loss(*args, **kwargs)
        calls.append(None)
        return {**losses, "loss": losses["loss"] * float("nan")} if len(calls) >= 5 else losses

    monkeypatch.setattr(training, "vle_loss", nan_from_the_fifth)
    out = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    with pytest.raises(SystemExit) as stop:
        training.main([*flags, f"--out={out}", "--steps=6"])
    message = str(stop.value.code)
    assert "not finite" in message and "step 5" in message and "--resume" in message and "\n" not in message
    assert torch.load(out / "state.pt", weights_only=True)["step"] == 3  # the last save, not the spoilt step
    logged = [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert logged == [1, 2, 3, 4]


def test_a_diverging_run_stops_at_its_first_non_finite_loss(tmp_path):
    with pytest.raises(SystemExit, match="the loss is not finite .* at step 2: training stops unsaved"):
        train(TrainConfig(**{**TINY, "warmup": 1}, out=str(tmp_path / "run"), steps=6, lr=1e30, grad_clip=0.0))
    assert not (tmp_path / "run" / "state.pt").exists()
