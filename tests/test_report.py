"""The results page: every section and plot from tiny models on two tiny photos, the paper's
figures as the paper prints them, one-line errors, and torchrun shards giving one process's numbers."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_image
from PIL import Image
from test_evaluate import write_ground_truth

import vle_core
from vle_core.report import PAPER_TABLE_1, main, tokens_needed

ROOT = Path(__file__).parents[1]
PAPER = ROOT.parent / "shared" / "reference" / "vle-paper.txt"
PLOTS = ("table1.png", "fig1.png", "fig2.png", "length.png", "masks.png")


def tiny_data(root: Path) -> Path:
    """A data root laid out as the real one: one Kodak photo, one BSDS500 test photo with two
    human maps, and one train and one val photo for the patch-PCA fit."""
    (root / "kodak").mkdir(parents=True)
    Image.fromarray(synthetic_image(40, 56, seed=1)).save(root / "kodak" / "kodim01.png")
    for split, seed in (("train", 2), ("val", 3), ("test", 4)):
        (root / "bsds500" / "images" / split).mkdir(parents=True)
        Image.fromarray(synthetic_image(48, 32, seed=seed)).save(
            root / "bsds500" / "images" / split / f"{seed}.jpg", quality=95
        )
    (root / "bsds500" / "groundTruth" / "test").mkdir(parents=True)
    halves = np.where(np.arange(32) < 16, 1, 2).astype(np.uint16)[None].repeat(48, axis=0)
    write_ground_truth(root / "bsds500" / "groundTruth" / "test" / "4.mat", [halves, np.ones((48, 32), np.uint16)])
    return root


def tiny_checkpoints(folder: Path) -> Path:
    """A VLE, a fixed-length autoencoder (trained with one token) and a masked VLE, untrained."""
    torch.manual_seed(0)
    for name, preset, tokens in (
        ("vle", "vanilla-tiny", 3),
        ("fixed", "vanilla-tiny", 1),
        ("masked", "masked-tiny", 2),
    ):
        model = vle_core.build_model(vle_core.preset(preset))
        vle_core.save_checkpoint(
            model,
            folder / name,
            f"# {name}\n",
            {"data": "bsds", "steps": 1, "max_tokens": tokens, "crop": 32, "batch": 2, "hours": 0.0},
        )
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("report")
    return {"data": tiny_data(base / "data"), "checkpoints": tiny_checkpoints(base / "checkpoints")}


def report_args(tiny, out) -> list[str]:
    return [
        "--out",
        str(out),
        "--data",
        str(tiny["data"]),
        "--checkpoints",
        str(tiny["checkpoints"]),
        "--tokens",
        "3",
        "--scenes",
        "2",
        "--device",
        "cpu",
    ]


def test_the_report_writes_every_section_and_plot(tiny, tmp_path):
    main(report_args(tiny, tmp_path))
    page = (tmp_path / "README.md").read_text()
    for heading in ("## 1. Table 1", "## 2. Fig. 1", "## 3. Fig. 2", "## 4. Length", "## 5. Masks"):
        assert heading in page
    assert page.count("**Reading.**") == 5
    for plot in PLOTS:
        assert f"]({plot})" in page
        with Image.open(tmp_path / plot) as png:
            assert png.format == "PNG" and min(png.size) > 200
    table = page.split("## 1.")[1].split("## 2.")[0]
    # the paper beside ours
    assert f"{PAPER_TABLE_1['vanilla VLE'][0][0]:.4f} / {PAPER_TABLE_1['vanilla VLE'][0][1]:.3f}" in table
    assert all(f"`{name}`" in table for name in ("vle", "fixed", "masked")) and "patch-PCA" in table
    assert all(re.search(rf"^\| {k} \|", table, re.M) for k in (1, 2, 3))
    for written in ("README.md", *PLOTS):
        (tmp_path / written).unlink()
    main(["--out", str(tmp_path), "--replot"])  # the page again from results.json, measuring nothing
    assert (tmp_path / "README.md").read_text() == page and all((tmp_path / plot).is_file() for plot in PLOTS)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [p["set"] for p in results["photos"]] == ["kodak", "bsds-test"]
    assert set(results["curves"]) == {"vle", "fixed", "masked", "patch-PCA"}
    assert np.asarray(results["curves"]["vle"]["mse"]).shape == (2, 3)
    assert set(results["bsds_seg"]) == {"masked"} and np.asarray(results["scenes"]["masked"]).shape == (2, 3)
    assert results["bsds_seg"]["masked"]["tokens"] == 2  # scored at its trained token count


def test_tokens_needed_is_the_first_count_under_the_threshold_or_one_past_the_last():
    mse = [[0.01, 0.0007, 0.0001], [0.01, 0.009, 0.008], [0.0001, 0.01, 0.01]]
    assert tokens_needed(mse, 0.00075).tolist() == [2, 4, 1]


@pytest.mark.skipif(not PAPER.is_file(), reason="the paper's text is not beside the repository")
def test_the_paper_figures_are_the_papers_table_1():
    rows = re.findall(r"^(\d)\t(\S+)/(\S+)\t(\S+)/(\S+)\t(\S+)", PAPER.read_text(), re.M)
    assert len(rows) == len(PAPER_TABLE_1["vanilla VLE"])
    for k, vanilla_mse, vanilla_ssim, mask_mse, mask_ssim, vae in rows:
        k = int(k)
        assert PAPER_TABLE_1["vanilla VLE"][k - 1] == (float(vanilla_mse), float(vanilla_ssim))
        assert PAPER_TABLE_1["mask VLE"][k - 1] == (float(mask_mse), float(mask_ssim))
        assert (vae == "-") == (k > len(PAPER_TABLE_1["VAE"]))


def run_module(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("module", ["vle_core.report", "vle_core.evaluate"])
def test_missing_data_is_one_line_that_names_data_and_vle_data(module, tiny, tmp_path):
    args = (
        ["--out", str(tmp_path / "out"), "--checkpoints", str(tiny["checkpoints"])]
        if module == "vle_core.report"
        else [str(tiny["checkpoints"] / "vle"), "--suite", "kodak"]
    )
    run = run_module(module, *args, "--data", str(tmp_path / "nowhere"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--data" in lines[0] and "VLE_DATA" in lines[0] and "nowhere" in lines[0]
    assert "VLE_DATA" in run_module(module, "--help").stdout


def test_evaluate_refuses_a_vanilla_model_for_a_mask_suite_in_one_line(tiny):
    run = run_module("vle_core.evaluate", str(tiny["checkpoints"] / "vle"), "--suite", "scenes", "--device", "cpu")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    # no progress bar first
    assert run.stderr.strip().count("\n") == 0 and "masked" in run.stderr and "%" not in run.stderr


@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="torchrun not installed",
)
def test_torchrun_two_processes_give_the_numbers_of_one(tiny, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    threads = {"OMP_NUM_THREADS": "1"}  # the same arithmetic in every process
    one = run_module("vle_core.report", *report_args(tiny, tmp_path / "one"), env=threads)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "vle_core.report", *report_args(tiny, tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **threads},
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one, two = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("one", "two"))
    assert (one.pop("settings")["processes"], two.pop("settings")["processes"]) == (1, 2)
    assert one == two  # every number, per image


def test_the_length_section_counts_tokens_per_photo_and_ranks_them_against_complexity(tmp_path):
    from vle_core.report import length_targets, measure_length, section_length

    paper = list(length_targets())[1]
    target = length_targets()[paper]
    # photo i reaches the paper's threshold at token i + 1; the last never does in 4 tokens
    mse = [[target * (0.5 if k >= i else 3) for k in range(4)] for i in range(5)]
    data = {
        "curves": {"vle": {"mse": mse}},
        "entropy": [5.0, 4.0, 7.0, 6.0, 3.0],
        "laplacian": [10.0, 20.0, 40.0, 80.0, 160.0],
    }
    checkpoints = {"vle": {"kind": "vanilla", "training": {"max_tokens": 4}}}
    found = measure_length(data, checkpoints)
    assert found["vle", paper]["needed"].tolist() == [1, 2, 3, 4, 5]  # 5: past the 4 measured
    assert found["vle", paper]["laplacian"]["spearman"] == pytest.approx(1.0)
    assert found["vle", paper]["entropy"]["spearman"] == pytest.approx(-0.2)
    text = section_length(data, checkpoints, tmp_path, 4)
    assert "## 4. Length" in text and "(length.png)" in text and (tmp_path / "length.png").is_file()
    assert "a strong rising rank correlation with the Laplacian's variance (rho = 1.00" in text
    assert "a weak falling rank correlation with grayscale entropy (rho = -0.20, not significant" in text
    assert "from 1 to more than 4 tokens (80% reach it within 4)" in text
