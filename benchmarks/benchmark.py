"""Speed of the explorer's three interactive paths on this machine, at 256x256 (or --size) with 8 tokens.

    python benchmarks/benchmark.py [--checkpoint NAME] [--size 256] [--runs 7]

Each figure is the median over runs of the app's own handler followed by gradio's
postprocessing of its outputs (the images written as PNG), i.e. what the server does per
request minus HTTP and queueing:
  first encode   upload -> views, with empty caches (reads the file, encodes, draws everything)
  slider step    one step of the token slider to a k not shown before, on a cached encoding
  edit           relocating one token to a new place (one token decoded, nothing encoded)
Goals: first encode <= 0.5 s, slider step <= 50 ms, edit <= 150 ms. Without a trained
checkpoint it times an untrained `vanilla-cpu` model (same architecture, so the same speed),
and says so.
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as explorer/__init__.py sets it, before torch is imported

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # the repository: explorer/ and vle_core/ are imported from there
if str(ROOT) not in sys.path:  # run as a script, this folder is on the path, not the repository
    sys.path.insert(0, str(ROOT))

import explorer  # noqa: E402
import vle_core  # noqa: E402
from explorer import edit_tab, models, settings, tokens_tab  # noqa: E402

N = 8


def median_ms(fn, runs: int) -> float:
    times = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def served(demo, api_name: str, handler):
    """handler, then gradio's postprocessing of its outputs as the server would do it."""
    fn = next(f for f in demo.fns.values() if f.api_name == api_name)

    def run(*args):
        values = handler(*args)
        for component, value in zip(fn.outputs, values):
            if not isinstance(value, dict) and hasattr(component, "postprocess"):
                component.postprocess(value)
        return values

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", default=None, help="a folder name in VLE_CHECKPOINTS (default: the app's default)"
    )
    parser.add_argument("--size", type=int, default=256, help="the working size, px (the app's goals are set at 256)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vle-benchmark-") as work:
        run(args, Path(work))


def run(args, work: Path):
    size = args.size
    os.environ["GRADIO_TEMP_DIR"] = str(work / "gradio")  # the views it writes go with the temp folder
    name = args.checkpoint or models.default_checkpoint()
    if name is None:
        name = "vanilla-cpu-untrained"
        torch.manual_seed(0)
        model = vle_core.build_model(vle_core.preset("vanilla-cpu"))
        vle_core.save_checkpoint(
            model,
            work / "checkpoints" / name,
            f"# {name}\nUntrained, for timing only.",
            training={"data": "none", "steps": 0},
        )
        explorer.configure(checkpoints=work / "checkpoints", cache_dir=work / "cache")
        print(
            f"No trained checkpoint in {settings.CHECKPOINTS}: timing an UNTRAINED vanilla-cpu model (same "
            "architecture and cost)."
        )
    else:
        explorer.configure(cache_dir=work / "cache")
    demo = explorer.build_demo()
    _, vle = models.get_model(name)
    print(
        f"checkpoint {name} ({vle.kind}) on {vle.device}, torch threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.2f}"
    )

    photo = Image.open(settings.ASSETS / "kodak-parrots.png").convert("RGB")
    side = min(photo.size)
    square = photo.crop(((photo.width - side) // 2, 0, (photo.width + side) // 2, side)).resize(
        (size, size), Image.Resampling.LANCZOS
    )
    images = []
    for i in range(args.runs + 1):  # a slightly different image each run, so nothing is cached
        path = work / f"image-{i}.png"
        Image.fromarray(np.roll(np.asarray(square), i, axis=1)).save(path)
        images.append(str(path))

    encode = served(demo, "encode", lambda i: tokens_tab.on_encode(images[i], N, size, name))
    encode(args.runs)  # warm-up: model load, first-call allocations
    encode_ms = median_ms(encode, args.runs)
    model_ms = median_ms(lambda i: vle.encode(np.asarray(square), N), args.runs)

    states = [tokens_tab.on_encode(image, N, size, name)[0] for image in images]  # all cached by now
    first = served(demo, "token", lambda i: tokens_tab.on_token(1 + i % (N - 1), states[i]))  # a k not shown before
    slider_ms = median_ms(first, args.runs)
    state = states[0]
    again = served(demo, "token", lambda i: tokens_tab.on_token(1 + i % N, state))
    revisit_ms = median_ms(again, max(args.runs, 2 * N))

    # a new place each run: no decode is reused
    move = served(demo, "move", lambda i: edit_tab.on_move(3, i + 1, 8, state))
    move(-6)
    edit_ms = median_ms(move, args.runs)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"first encode, {N} tokens at {size}x{size}: {encode_ms:7.1f} ms (goal 500; of which the model's encode "
        f"{model_ms:.1f} ms)"
    )
    print(
        f"slider step, cached encoding:       {slider_ms:7.1f} ms (goal 50; {revisit_ms:.1f} ms back at a k already "
        "shown)"
    )
    print(f"edit, relocate one token:           {edit_ms:7.1f} ms (goal 150)")
    print(f"peak RSS:                           {peak_mb:7.0f} MB")
    print(
        f"load average after: {os.getloadavg()[0]:.2f} (other processes on these {os.cpu_count()} cores slow every "
        "figure)"
    )
    explorer.configure()  # closes the cache in the temp folder


if __name__ == "__main__":
    main()
