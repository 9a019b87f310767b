"""The quality chart: PSNR or MSE, and SSIM, against the number of tokens."""

import numpy as np
import plotly.graph_objects as go

from .views import PAST_TRAINING

TARGETS = {
    "PSNR": 25.0,
    "MSE": 0.00075,
    "SSIM": 0.8,
}  # MSE 0.00075 on [0, 1] pixels is the paper's 0.003 on [-1, 1] (Fig. 2)


def quality_figure(
    curves: list[tuple[str, dict, int | None]],
    metric: str,
    target: float | None,
    stop: tuple[float, bool] | None = None,
) -> go.Figure:
    """PSNR (or MSE) on the left axis and SSIM on the right against the number of tokens, one
    pair of lines per checkpoint; counts past training shaded, the target drawn. stop: (target
    PSNR, reached) of an encode until a target, drawn with where the first checkpoint stopped."""
    left = "MSE" if metric == "MSE" else "PSNR"
    figure = go.Figure()
    styles = ["solid", "dash", "dot", "dashdot"]
    for i, (name, q, trained) in enumerate(curves):
        x = np.arange(1, len(q["MSE"]) + 1)
        psnr = np.where(np.isfinite(q["PSNR"]), q["PSNR"], np.nan)
        y = q["MSE"] if left == "MSE" else psnr
        dash = styles[i % len(styles)]
        figure.add_scatter(
            x=x, y=y, name=f"{left} · {name}", mode="lines+markers", line=dict(color="#1f77b4", dash=dash)
        )
        figure.add_scatter(
            x=x,
            y=q["SSIM"],
            name=f"SSIM · {name}",
            mode="lines+markers",
            yaxis="y2",
            line=dict(color="#2ca02c", dash=dash),
        )
        if trained is not None and trained < len(x):
            figure.add_vrect(
                x0=trained + 0.5,
                x1=len(x) + 0.5,
                fillcolor=PAST_TRAINING,
                opacity=0.06 if len(curves) > 1 else 0.08,
                line_width=0,
            )
            if i == 0:
                figure.add_annotation(
                    x=trained + 0.5,
                    y=1,
                    yref="paper",
                    text="past training",
                    showarrow=False,
                    xanchor="left",
                    font=dict(color=PAST_TRAINING),
                )
    if target is not None:
        yref = "y2" if metric == "SSIM" else "y"
        figure.add_hline(y=target, line=dict(color="#888", dash="dot"), yref=yref)
        # The label sits on the line's right end. On a log axis an annotation's y is log10 of the value
        # (plotly's add_hline label would land far from its line there).
        y = float(np.log10(target)) if metric == "MSE" and target > 0 else target
        figure.add_annotation(
            x=1,
            xref="paper",
            y=y,
            yref=yref,
            text=f"target {metric}",
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font=dict(color="#666"),
        )
    if stop is not None:
        stop_psnr, reached = stop
        k = len(curves[0][1]["MSE"])
        text = (
            f"PSNR {stop_psnr:g} dB reached at token {k}"
            if reached
            else f"PSNR {stop_psnr:g} dB not reached in {k} tokens"
        )
        figure.add_vline(x=k, line=dict(color="#d62728", dash="dash"))
        figure.add_annotation(
            x=k,
            y=0,
            yref="paper",
            text=text,
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font=dict(color="#d62728"),
        )
        if left == "PSNR":
            figure.add_hline(y=stop_psnr, line=dict(color="#d62728", dash="dot"))
    figure.update_layout(
        xaxis=dict(title="tokens", dtick=1 if len(curves[0][1]["MSE"]) <= 20 else None),
        yaxis=dict(
            title="MSE (on [0, 1] pixels)" if left == "MSE" else "PSNR (dB)",
            type="log" if left == "MSE" else "linear",
            color="#1f77b4",
        ),
        yaxis2=dict(title="SSIM", overlaying="y", side="right", range=[0, 1], color="#2ca02c"),
        legend=dict(orientation="h", y=-0.2),
        margin=dict(l=60, r=60, t=30, b=40),
        height=380,
    )
    return figure
