"""Evaluate a checkpoint on the held-out sets; the figures in the model cards come from here.

    python -m vle_core.evaluate checkpoints/vanilla-natural --suite kodak --tokens 12
    python -m vle_core.evaluate checkpoints/masked-scenes --suite scenes --tokens 6
    python -m vle_core.evaluate checkpoints/masked-natural --suite bsds-seg --tokens 8

Suites:
    kodak     PSNR / MSE / SSIM per token count on Kodak at full resolution, beside the best
              linear code with the same number of latent values: PCA of 8x8 RGB patches fitted
              on BSDS500 train+val, 4 components per token (a token holds 4 values per 8x8 patch).
    scenes    foreground ARI of the per-pixel argmax token against the true objects, on held-out
              generated scenes, beside a trivial segmentation (the argmax of the RGB channels).
    bsds-seg  mean ARI of the argmax token against each human segmentation of the BSDS500 test
              images, beside three classical segmenters given as many segments: k-means on colour
              and position, SLIC superpixels and Felzenszwalb's graph segmentation (their settings
              picked on BSDS500 train + val: `python -m vle_core.evaluate --tune-baselines`).
    edits     object edits on held-out scenes against the scene drawn without the object, or with
              it moved (vle_core/edit_suites.py).
    removal   switching off a pasted object's tokens on photo composites, against the photo it
              was pasted on, beside classical fills given the exact mask (vle_core/edit_suites.py).

Data: `--data DIR`, else $VLE_DATA, else ../shared/data beside the repository; DIR holds
`kodak/kodim*.png` and `bsds500/{images,groundTruth}/{train,val,test}` (see vle_core/data.py).
`python -m vle_core.report` runs every suite on every shipped checkpoint, in one results page.

    python -m vle_core.evaluate checkpoints/masked-natural --tune-precursor --tokens 8

compares settings of a masked VLE's weightless S by its masks' ARI on BSDS500 train + val.

    python -m vle_core.evaluate checkpoints/masked-natural --region-bound --tokens 8

bounds what a masked VLE's region tokens can rebuild on Kodak: the PSNR if every token after the
whole-image ones rebuilt the photo losslessly inside S's proposals (`region_bound`); `--linear`
adds what those tokens' values buy under the best linear code, spent on the whole photo, on the
region's frame or on the region alone (`linear_regions`). With
`--precursor tau=1.0` (any of S's settings, repeatable) a suite or the bound runs with S changed
on the trained model, which S allows as it has no weights.
"""

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .baselines import tune_baselines
from .checkpoint import load_vle
from .data import kodak_paths, read_image, train_val_paths, use_data
from .evaluation import PRECURSOR_GRID, SUITES, markdown, region_bound, residual_basis, run_suite, tune_precursor


def precursor_settings(pairs: list[str], config) -> dict:
    """--precursor NAME=VALUE pairs -> set_precursor's keyword arguments, each value of its
    field's type: "tau=1.0" (or "precursor_tau=1.0") -> {"precursor_tau": 1.0}."""
    known = {f.name: f.type for f in fields(config) if f.name.startswith("precursor_")}
    if not known:
        raise ValueError("--precursor changes a masked VLE's S: this checkpoint has none")
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name if name.startswith("precursor_") else f"precursor_{name}"
        if not sep or name not in known:
            raise ValueError(
                "--precursor takes NAME=VALUE with NAME one of "
                f"{sorted(n.removeprefix('precursor_') for n in known)}, got {pair!r}"
            )
        settings[name] = known[name](value)  # the field's type (float, int, str); a value that is no number: ValueError
    return settings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vle_core.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", nargs="?", help="a checkpoint folder, e.g. checkpoints/vanilla-natural")
    parser.add_argument(
        "--suite",
        choices=sorted(SUITES),
        help="kodak: PSNR, MSE, SSIM per token count; scenes: masks against generated scenes' objects; bsds-seg: "
        "masks against BSDS500 test human segmentations; edits: object edits on scenes; "
        "removal: pasted objects removed",
    )
    parser.add_argument("--tokens", type=int, default=12, help="tokens per image (default 12)")
    parser.add_argument(
        "--data", help="the data root holding kodak/ and bsds500/ (default: $VLE_DATA, else ../shared/data)"
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        help="score every k-th image or scene of the suite's set (default 1: all of them)",
    )
    parser.add_argument("--limit", type=int, help="score at most this many images or scenes (after --every)")
    parser.add_argument("--json", help="also write the result to this JSON file")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a torch device")
    parser.add_argument(
        "--tune-baselines",
        action="store_true",
        help="pick the bsds-seg baselines' settings on BSDS500 train+val, and stop",
    )
    parser.add_argument(
        "--tune-precursor",
        action="store_true",
        help="compare S settings for the masked checkpoint on BSDS500 train+val, and stop",
    )
    parser.add_argument(
        "--region-bound",
        action="store_true",
        help="bound a masked checkpoint's Kodak PSNR by what its region tokens can cover (region_bound), and stop",
    )
    parser.add_argument(
        "--whole-from",
        metavar="CKPT",
        help="with --region-bound: also bound with this checkpoint's first tokens as the whole-image ones",
    )
    parser.add_argument(
        "--linear",
        action="store_true",
        help="with --region-bound: also what the region tokens' values buy under the best linear code (fitted on "
        "BSDS500 train + val), spent on the whole image, the region's frame or the region alone",
    )
    parser.add_argument(
        "--precursor",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a suite or --region-bound with this setting of the weightless S changed (repeatable), e.g. tau=1.0",
    )
    parser.add_argument(
        "--rest-area",
        type=float,
        nargs="+",
        metavar="A",
        help="with --tune-precursor: compare these precursor_rest_area values (S's other settings as the checkpoint "
        "has them) instead of seed and tolerance",
    )
    args = parser.parse_args(argv)
    if not args.tune_baselines and not (args.checkpoint and (args.suite or args.tune_precursor or args.region_bound)):
        parser.error("give a checkpoint and --suite, --tune-precursor or --region-bound (or --tune-baselines)")
    if args.linear and not args.region_bound:
        parser.error("--linear is a part of --region-bound")
    if args.precursor and (args.tune_precursor or args.tune_baselines):
        parser.error("--precursor changes S for a suite or --region-bound; --tune-precursor sets S's settings itself")
    use_data(args.data)
    try:
        if args.tune_baselines:
            tune_baselines()
            return
        if args.tune_precursor:
            grid = [{"precursor_rest_area": area} for area in args.rest_area] if args.rest_area else PRECURSOR_GRID
            tune_precursor(args.checkpoint, n_tokens=args.tokens, grid=grid)
            return
        vle = load_vle(args.checkpoint, device=args.device)
        if args.precursor:
            vle.model.set_precursor(**precursor_settings(args.precursor, vle.config))
        if args.region_bound:
            whole_from = load_vle(args.whole_from, device=args.device) if args.whole_from else None
            basis = residual_basis(vle, [read_image(p) for p in train_val_paths()[::16]]) if args.linear else None
            print(
                markdown(
                    "region-bound",
                    region_bound(vle, [read_image(p) for p in kodak_paths()], args.tokens, whole_from, basis),
                )
            )
            return
        result = run_suite(args.suite, vle, args.tokens, args.every, args.limit)
    except (ValueError, FileNotFoundError) as e:  # missing data, a bad checkpoint, a vanilla model for a mask suite
        sys.exit(f"vle_core.evaluate: error: {str(e).splitlines()[0]}")
    print(markdown(args.suite, result))
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "tokens": args.tokens, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
