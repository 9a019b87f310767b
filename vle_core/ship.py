"""Turn a training run into a shipped checkpoint: float16 weights, evaluated, with its model card.

    python -m vle_core.ship runs/vanilla checkpoints/vanilla-natural --suite kodak --tokens 12

The card's figures are measured here, on the float16 weights that ship, by `vle_core.evaluation`;
`--note` adds what the figures do not say (e.g. where a bar falls short and what was tried).
"""

import argparse
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

from .checkpoint import load_vle, read_checkpoint, save_checkpoint
from .config import preset
from .evaluation import SUITES, markdown, run_suite
from .vle import build_model

SUITE_NOTES = {  # what each suite's figures mean, printed under them in the card
    "kodak": """
PSNR and MSE on [0, 1] pixels (the authors' MSE on [-1, 1] is 4x these). Patch-PCA: 8x8 RGB
patches, fitted on BSDS500 train + val, 4 components per token (a token holds 4 values per
8x8 patch), the best linear code with the same number of values.
""",
    "scenes": """
fg_ari: the foreground adjusted Rand index of the per-pixel argmax over the tokens' decoded masks
against the true objects (background pixels ignored), on held-out generated scenes;
fg_ari_rgb_argmax: the same score for the argmax of the RGB channels, a trivial segmentation;
psnr: of the reconstruction after all the tokens; speck_first: the share of scenes where a token's
mask covered under 1% of the image while a later token's covered more; background_coded: the share
where one token's mask covers at least half the background, and background_token the mean token
at which it does (over those scenes).
""",
    "bsds-seg": """
ari: the adjusted Rand index of the per-pixel argmax over the tokens' decoded masks against each
human segmentation of a BSDS500 test image, averaged; ari_kmeans, ari_slic, ari_felzenszwalb: the
same score for k-means on colour and position, SLIC superpixels and Felzenszwalb's graph
segmentation, each given as many segments as the VLE used (segments), with settings tuned on
BSDS500 train + val (`python -m vle_core.evaluate --tune-baselines`).
""",
}


SUITE_DATA = {  # what each suite measures on, as the card's metadata names it
    "kodak": "Kodak Lossless True Color Image Suite (24 photos)",
    "scenes": "generated scenes from the held-out seed",
    "bsds-seg": "BSDS500 test with human segmentations",
    "edits": "generated scenes from the held-out seed, edited",
    "removal": "BSDS500 test segments pasted on Kodak photos",
}


def hardware() -> str:
    """The machine this runs on; training is assumed to have run on the same kind."""
    return (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"a {os.cpu_count()}-core {platform.machine()} CPU"
    )


def shown_command(argv: list[str]) -> str:
    """The command line as the card shows it: the note's text is the card's own paragraphs, so
    it stands there as "..." rather than a second time, quoted for a shell."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            shown.append("...")
        elif arg.startswith("--note="):
            shown.append("--note=...")
        else:
            shown.append(arg)
        skip = arg == "--note"
    return shlex.join(shown).replace("'...'", "...")


DATASETS = {"bsds": "bsds500", "scenes": "generated-scenes"}  # a run's --data parts, as the card's datasets name them
KODAK_COUNTS = (1, 2, 4, 8, 12)  # token counts whose Kodak PSNR the card's metadata lists


def card_metrics(suite: str, result: dict) -> list[tuple[str, str, float]]:
    """(type, name, value) of a suite's headline figures, for the card's metadata."""
    if suite == "kodak":
        counts = [k for k in KODAK_COUNTS if k <= len(result["psnr"])]
        return [("psnr", f"PSNR at {k} token{'s' if k > 1 else ''} (dB)", result["psnr"][k - 1]) for k in counts]
    return [(key, key, value) for key, value in result.items() if isinstance(value, float) and math.isfinite(value)]


def front_matter(name: str, data: str | None, results: dict) -> str:
    """The Hugging Face model card metadata: license, library, tags, datasets, and each suite's
    figures as a model-index result (YAML written out here: the library does not need pyyaml)."""
    datasets = sorted(
        {DATASETS.get(part.split(":")[0], part.split(":")[0]) for part in (data or "").split("+") if part}
    )
    lines = ["---", "license: mit", "library_name: pytorch", "tags:"]
    lines += [f"  - {tag}" for tag in ("variable-length-embeddings", "vle", "image-tokenizer", "autoencoder")]
    lines += ["datasets:", *(f"  - {d}" for d in datasets)] if datasets else []
    lines += ["model-index:", f"  - name: {name}", "    results:"]
    for suite, result in results.items():
        lines += [
            "      - task:",
            "          type: image-to-image",
            f"          name: held-out {suite} suite (vle_core.evaluate)",
        ]
        lines += [
            "        dataset:",
            f"          type: {suite}",
            f"          name: {SUITE_DATA.get(suite, suite)}",
            "        metrics:",
        ]
        lines += [
            f"          - {{type: {t}, name: {n}, value: {float(v):.4f}}}" for t, n, v in card_metrics(suite, result)
        ]
    return "\n".join([*lines, "---", ""])


def as_preset(model, name: str):
    """`model`'s weights in a fresh model of preset `name`, which must hold a subset of them with
    the same shapes; the weights it lacks are left out. A ValueError says what does not fit."""
    target = build_model(preset(name))
    have, want = model.state_dict(), target.state_dict()
    misfit = [k for k in want if k not in have or have[k].shape != want[k].shape]
    if type(target.config) is not type(model.config) or misfit:
        raise ValueError(f"preset {name} is not a part of the run's model: {misfit[:3] or type(model.config).__name__}")
    target.load_state_dict({k: have[k] for k in want})
    return target.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a training run folder (its model/ subfolder is shipped)")
    parser.add_argument("out", help="the checkpoint folder to write, e.g. checkpoints/vanilla-natural")
    parser.add_argument(
        "--suite",
        action="append",
        choices=sorted(SUITES),
        required=True,
        help="a held-out suite to measure for the card (repeatable)",
    )
    parser.add_argument("--tokens", type=int, default=12, help="tokens per image in the suites (default 12)")
    parser.add_argument(
        "--every", type=int, default=1, help="bsds-seg: score every k-th test image (default 1: all 200)"
    )
    parser.add_argument("--title", default=None, help="the card's title (default: the checkpoint folder's name)")
    parser.add_argument("--note", default="", help="a paragraph for the card: shortfalls, what was tried")
    parser.add_argument(
        "--as-preset",
        default="",
        help="ship the run's weights as this preset's model, leaving out the weights it lacks (a part the card "
        "shows unused, e.g. a context block); refused unless every weight it has is in the run's model with the "
        "same shape",
    )
    args = parser.parse_args(argv)

    run, out = Path(args.run), Path(args.out)
    model, meta = read_checkpoint(run / "model")
    if args.as_preset:
        model = as_preset(model, args.as_preset)
    training = dict(meta["training"])
    train_config = json.loads((run / "train_config.json").read_text()) if (run / "train_config.json").exists() else {}
    save_checkpoint(model, out, "(being evaluated)\n", training, dtype=torch.float16)

    vle = load_vle(out, device="cpu")
    sections, results = [], {}
    for suite in args.suite:
        every = args.every if suite == "bsds-seg" else 1
        result = results[suite] = run_suite(suite, vle, args.tokens, every)
        flag = f" --every {every}" if every > 1 else ""
        sections.append(
            f"### {suite} (`python -m vle_core.evaluate {out} --suite {suite} --tokens {args.tokens}{flag}`)"
            f"\n\n{markdown(suite, result)}\n"
        )

    kind = model.config.kind
    title = args.title or out.name
    command = f"python -m vle_core.ship {shown_command(sys.argv[1:] if argv is None else argv)}"
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    shipped_as = args.as_preset or train_config.get("preset", "?")
    trained_as = f" (trained as `{train_config.get('preset', '?')}`)" if args.as_preset else ""
    crop, settings = training.get("crop"), {k: v for k, v in train_config.items() if k not in ("out", "device")}
    card = (
        front_matter(out.name, training.get("data"), results)
        + f"""
# {title}

A {kind} Variable Length Embedding (VLE; Chiu, Gu and Zhou, 2023): {millions:.2f}M parameters, preset
`{shipped_as}`{trained_as}, trained on **{training.get("data")}** with at most
**{training.get("max_tokens")} tokens** per image.

## Use

```python
import vle_core
vle = vle_core.load_vle("checkpoints/{out.name}")
encoding = vle.encode("photo.png", n_tokens={training.get("max_tokens") or 8})
```

## Training

{training.get("steps")} steps of batch {training.get("batch")} ({crop}x{crop} random crops),
{training.get("hours")} hours on {hardware()}, never on the held-out sets (BSDS500 test, Kodak);
float16 weights, loaded as float32. Settings: `{json.dumps(settings)}`.
This card and its figures: `{command}`.

## Measured on held-out data

{chr(10).join(sections)}{"".join(SUITE_NOTES[suite] for suite in args.suite)}
{f"## Limitations{chr(10)}{chr(10)}{args.note}{chr(10)}" if args.note else ""}"""
    )
    (out / "README.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
