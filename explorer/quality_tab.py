"""The Quality tab: the curve, the tokens needed for a target, the entropy."""

import gradio as gr

from .cache import entropy, first_reaching, quality, tokens_needed
from .errors import UserError
from .plots import TARGETS, quality_figure
from .session import Session, session


def on_curve(
    metric: str,
    target: float | None,
    state: Session | None,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """The quality curve (PSNR or MSE, and SSIM, against tokens), tokens needed for the target, entropy."""
    if not state:
        return None, ""
    if metric not in TARGETS:
        raise UserError(f"The target metric is one of {', '.join(TARGETS)}, not {metric!r}.")
    progress(0.1, desc="Measuring SSIM")
    vle, entry = session(state)
    q = quality(state.key, entry)
    target = None if target is None else float(target)
    stop_psnr = state.target_psnr
    stop = None if stop_psnr is None else (stop_psnr, first_reaching(entry.mse, stop_psnr) is not None)
    figure = quality_figure([(state.checkpoint, q, vle.trained_tokens)], metric, target, stop)
    text = f"Shannon entropy of the image: **{entropy(entry):.2f} bits**"
    if stop is not None:
        text = (
            ("Encoded until " if stop[1] else "Encoded toward ")
            + f"PSNR {stop_psnr:g} dB: **{len(entry)} tokens** · "
            + text
        )
    if target is not None:
        needed = tokens_needed(q, metric, target)
        relation = "≤" if metric == "MSE" else "≥"
        shown = needed if needed else f"more than {len(entry)}"
        text = f"Tokens needed for {metric} {relation} {target:g}: **{shown}** · " + text
    if state.source[0] == "tokens":
        text += " · (loaded tokens: measured against their own final image, there is no source image)"
    return figure, text


def on_target_metric(metric: str):
    return TARGETS.get(metric, TARGETS["PSNR"])
