"""What each checkpoint costs on this machine: FLOPs, encode and decode times, the fraction of the
machine's matrix rate they reach, training throughput and peak memory.

    python -m vle_core.bench [--checkpoints checkpoints] [--only NAME ...] [--threads 2] [--runs 5] [--no-busy]
    python -m vle_core.bench --profile NAME [--input photo|scene|noise]

Each checkpoint is measured in a process of its own, so that its peak memory is its own. Times are
the best of `--runs` (the least disturbed by other work on the machine); figures are per image:
  E, D GFLOP        one token's encoder and decoder at 256x256 (torch.utils.flop_counter)
  encode 8          an 8-token encode (the residual loop) at 256 and 512 px
  decode 1          one token decoded alone, as the app's slider and edits do, at 256 and 512 px
  % of peak         the encode's FLOP rate over this machine's float32 matrix-multiply rate
  train img-tok/s   training throughput: images x tokens per second of forward + backward
                    (8 crops of 96x96, 8 tokens, the loss of the checkpoint's kind)
  peak MB           the process's peak resident memory after all of the above
A second table times what users encode, 8 tokens of a generated 64 px scene and of a photo
(assets/kodak-hats.png scaled to 512 px on its long side, as the app does), on an idle machine and
beside a busy process the benchmark starts (2 threads of float32 matrix products, as another
user's work on a shared CPU), and the slowdown between the two.
`--profile` shows where one 8-token encode spends its time instead: the functions with the most
time of their own (cProfile, after a warm-up) and, for a masked VLE, the work its S counted
(nets.Precursor.work); `noise` is a 256 px image of uniform noise, S's worst case.
The app's own paths (upload, slider, edit through gradio) are timed by `benchmarks/benchmark.py`.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app: idle threads sleep, so a busy machine slows us less

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from .checkpoint import load_vle
from .loop import decode_tokens, residual_loop
from .losses import vle_loss
from .scenes import HELDOUT_SEED, SceneSet

SIZES = (256, 512)
N_TOKENS = 8
TRAIN_BATCH, TRAIN_CROP = 8, 96
PHOTO = Path(__file__).resolve().parent.parent / "assets" / "kodak-hats.png"
PHOTO_SIDE, SCENE_SIDE = 512, 64  # the app's default working size; the generated scenes' size
# Another user's work on a shared CPU: two threads of float32 matrix products, until stopped.
BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"
BUSY_START_S = 2.0  # the busy process imports torch and starts multiplying before the timing begins


def best_seconds(fn, runs: int) -> float:
    fn()  # warm-up: first-call allocations, oneDNN kernel choice
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matrix_rate(runs: int) -> float:
    """This machine's float32 matrix-multiply rate in GFLOP/s (1024x1024, best of runs)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / best_seconds(lambda: a @ b, max(runs, 10)) / 1e9


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def user_inputs() -> dict:
    """The inputs of the second table, [1, 3, H, W] in [-1, 1]: a held-out 64 px scene and the
    photo scaled to PHOTO_SIDE px on its long side (LANCZOS, as explorer.images.fit_working_size)."""
    with Image.open(PHOTO) as opened:
        photo = opened.convert("RGB")
    scale = PHOTO_SIDE / max(photo.size)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(photo, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    return {"scene": SceneSet(1, size=SCENE_SIDE, seed=HELDOUT_SEED)[0][0][None], "photo": pixels}


def user_encode_seconds(model, runs: int) -> dict:
    """Best-of-runs seconds of an 8-token encode of each of `user_inputs`."""
    with torch.inference_mode():
        return {
            name: best_seconds(lambda x=x: residual_loop(model, x, N_TOKENS), runs) for name, x in user_inputs().items()
        }


def profile(source, input_name: str, rows: int = 15) -> str:
    """Where one 8-token encode of `input_name` (a user input, or "noise") spends its time: the
    seconds it took, S's work for a masked VLE, and cProfile's functions by their own time."""
    model = load_vle(source, device="cpu").model
    x = (
        torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
        if input_name == "noise"
        else user_inputs()[input_name]
    )
    s = getattr(model, "precursor", None)
    with torch.inference_mode():
        residual_loop(model, x, N_TOKENS)  # warm-up: oneDNN picks its kernels on the first call
        if hasattr(s, "work"):
            s.work.clear()
        profiler, start = cProfile.Profile(), time.perf_counter()
        profiler.runcall(residual_loop, model, x, N_TOKENS)
        seconds = time.perf_counter() - start
    out = io.StringIO()
    print(f"{N_TOKENS} tokens of {input_name} {tuple(x.shape[-2:])}: {seconds:.3f} s under the profiler", file=out)
    if hasattr(s, "work"):
        print(f"S's work: {dict(s.work)}", file=out)
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(rows)
    return out.getvalue()


def beside_busy(fn):
    """fn() run while a busy process (BUSY) works on the same cores; the process is stopped after."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env={**os.environ, "OMP_NUM_THREADS": "2"})
    try:
        time.sleep(BUSY_START_S)
        return fn()
    finally:
        busy.terminate()
        busy.wait()


def measure(folder: Path, runs: int, busy: bool = True) -> dict:
    """Every figure for one checkpoint, in this process; busy: also the user encodes beside a busy
    process (the second table)."""
    vle = load_vle(folder, device="cpu")
    model = vle.model
    stage = torch.ones(1, dtype=torch.long)
    result = {"checkpoint": folder.name, "kind": vle.kind, "parameters": sum(p.numel() for p in model.parameters())}
    with torch.inference_mode():
        x = torch.rand(1, 3, 256, 256) * 2 - 1
        inputs = torch.cat([x, torch.ones_like(x[:, :1])], 1) if vle.kind == "masked" else x
        z, _ = model.encoder(inputs, stage=stage)
        result["encoder_gflop"] = flops(lambda: model.encoder(inputs, stage=stage)) / 1e9
        result["decoder_gflop"] = flops(lambda: model.decoder(z, stage)) / 1e9
        for size in SIZES:
            x = torch.rand(1, 3, size, size) * 2 - 1
            out = residual_loop(model, x, N_TOKENS)
            result[f"encode_gflop_{size}"] = flops(lambda x=x: residual_loop(model, x, N_TOKENS)) / 1e9
            result[f"encode_ms_{size}"] = 1000 * best_seconds(lambda x=x: residual_loop(model, x, N_TOKENS), runs)
            token = (out.latents[0], out.mean[0], out.std[0], stage)
            result[f"decode_ms_{size}"] = 1000 * best_seconds(
                lambda token=token, size=size: decode_tokens(model, *token, (size, size)), runs
            )
    for name, seconds in user_encode_seconds(model, runs).items():
        result[f"{name}_ms"] = 1000 * seconds
    if busy:
        for name, seconds in beside_busy(lambda: user_encode_seconds(model, runs)).items():
            result[f"{name}_busy_ms"] = 1000 * seconds

    model.train()
    crops = torch.rand(TRAIN_BATCH, 3, TRAIN_CROP, TRAIN_CROP) * 2 - 1

    def train_step():
        loss = vle_loss(model.config, crops, residual_loop(model, crops, N_TOKENS))["loss"]
        model.zero_grad(set_to_none=True)
        loss.backward()

    result["train_image_tokens_per_s"] = TRAIN_BATCH * N_TOKENS / best_seconds(train_step, max(1, runs // 2))
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def table(results: list[dict], rate: float) -> str:
    """A markdown table of `measure`'s results; `rate`: the machine's matrix rate in GFLOP/s."""
    head = (
        "| checkpoint | params | E GFLOP/token | D GFLOP/token | encode 8 @256 | encode 8 @512 "
        "| decode 1 @256 | decode 1 @512 | % of peak @256 / @512 | train img-tok/s | peak MB |\n|" + "---|" * 11
    )
    rows = []
    for r in results:
        peak = [100 * r[f"encode_gflop_{s}"] / (r[f"encode_ms_{s}"] / 1000) / rate for s in SIZES]
        rows.append(
            f"| `{r['checkpoint']}` | {r['parameters'] / 1e6:.2f}M "
            f"| {r['encoder_gflop']:.2f} | {r['decoder_gflop']:.2f} "
            f"| {r['encode_ms_256']:.0f} ms | {r['encode_ms_512']:.0f} ms "
            f"| {r['decode_ms_256']:.1f} ms | {r['decode_ms_512']:.1f} ms "
            f"| {peak[0]:.0f}% / {peak[1]:.0f}% | {r['train_image_tokens_per_s']:.0f} | {r['peak_mb']:.0f} |"
        )
    return "\n".join([head, *rows])


def user_table(results: list[dict]) -> str:
    """A markdown table of the user encodes, idle and beside the busy process, and the slowdown."""
    head = (
        f"| checkpoint | scene {SCENE_SIDE} px | busy | slowdown | photo {PHOTO_SIDE} px | busy | slowdown |\n|"
        + "---|" * 7
    )
    rows = []
    for r in results:
        cells = []
        for name in ("scene", "photo"):
            idle, busy = r[f"{name}_ms"], r.get(f"{name}_busy_ms")
            cells += (
                [f"{idle:.0f} ms", "-", "-"]
                if busy is None
                else [f"{idle:.0f} ms", f"{busy:.0f} ms", f"{busy / idle:.1f}x"]
            )
        rows.append(f"| `{r['checkpoint']}` | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoints",
        default=str(Path(__file__).resolve().parent.parent / "checkpoints"),
        help="a folder of checkpoint folders",
    )
    parser.add_argument("--only", nargs="*", default=None, help="checkpoint names to measure (default: every one)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: this project's machines)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure; the best is kept")
    parser.add_argument("--no-busy", action="store_true", help="skip the encodes beside a busy process")
    parser.add_argument(
        "--profile", metavar="NAME", default=None, help="profile one 8-token encode of this checkpoint instead"
    )
    parser.add_argument(
        "--input", choices=["photo", "scene", "noise"], default="photo", help="what --profile encodes (default: photo)"
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one folder, print JSON
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        try:
            print(profile(args.profile, args.input))
        except ValueError as e:  # not a checkpoint: load_vle says which and why
            sys.exit(f"bench: error: {e}")
        return
    if args.one:
        print(json.dumps(measure(Path(args.one), args.runs, busy=not args.no_busy)))
        return
    root = Path(args.checkpoints)
    folders = sorted(p for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    if args.only is not None:
        folders = [f for f in folders if f.name in args.only]
    if not folders:
        sys.exit(
            f"bench: error: no checkpoint folders to measure in {root}" + (f" named {args.only}" if args.only else "")
        )
    rate = matrix_rate(args.runs)
    print(
        f"{os.cpu_count()} cores, {args.threads} torch threads, float32 matrix rate {rate:.0f} GFLOP/s, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results = []
    for folder in folders:
        command = [
            sys.executable,
            "-m",
            "vle_core.bench",
            "--one",
            str(folder),
            "--threads",
            str(args.threads),
            "--runs",
            str(args.runs),
        ] + ["--no-busy"] * args.no_busy
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
        )
        if done.returncode != 0:
            why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
            sys.exit(f"bench: error: measuring {folder.name} failed: {why}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"measured {folder.name}", file=sys.stderr, flush=True)
    print(table(results, rate))
    print()
    print(user_table(results))
    print(f"load average after: {os.getloadavg()[0]:.2f} (other work on these cores slows every time above)")


if __name__ == "__main__":
    main()
