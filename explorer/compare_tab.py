"""The Compare tab: two checkpoints on this session's image."""

import gradio as gr

from .cache import get_entry, quality
from .models import get_model
from .pages import cannot_compare
from .plots import quality_figure
from .session import Session
from .views import shown_token_views


def on_compare(
    checkpoint_a: str,
    checkpoint_b: str,
    k: float,
    state: Session | None,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """Two checkpoints on this session's image: the first k tokens, their masks, both curves.
    Where it cannot run, the panels are cleared and the text says why."""
    why = cannot_compare(state)
    if why:
        return None, None, None, None, None, why
    _, image = state.source
    shown, curves = [], []
    for name in (checkpoint_a, checkpoint_b):
        progress(0.1 + 0.4 * len(curves), desc=f"Encoding with {name}")
        model_id, vle = get_model(name)
        key, entry, _ = get_entry(model_id, vle, ("image", image), state.n)
        views = shown_token_views(entry, int(k), vle.trained_tokens)
        shown += [views[0], views[4]]
        curves.append((name, quality(key, entry), vle.trained_tokens))
    lines = []
    for name, q, _ in curves:
        j = min(int(k), len(q["PSNR"]))  # k past this checkpoint's tokens: its last
        lines.append(f"**{name}**: PSNR {q['PSNR'][j - 1]:.1f} dB, SSIM {q['SSIM'][j - 1]:.3f} after {j} tokens")
    return shown[0], shown[2], shown[1], shown[3], quality_figure(curves, "PSNR", None), " · ".join(lines)
