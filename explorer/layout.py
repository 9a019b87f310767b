"""The page: components, and which handler each event calls (each an API endpoint)."""

import gradio as gr

from . import settings
from .compare_tab import on_compare
from .edit_tab import (
    on_all_on,
    on_donor,
    on_move,
    on_move_to,
    on_pick_edit_token,
    on_reset,
    on_scatter,
    on_select_edit_token,
    on_solo,
    on_strength,
    on_switch,
    on_transplant,
    on_undo,
)
from .export_tab import on_export_gif, on_export_strip, on_export_tokens, on_load_tokens
from .images import image_input
from .models import checkpoint_choices, default_checkpoint
from .plots import TARGETS
from .quality_tab import on_curve, on_target_metric
from .tokens_tab import example_images, on_checkpoint_info, on_details, on_encode, on_page_load, on_select_token, on_token

INTRO = """# VLE Explorer
Variable Length Embeddings ([Chiu, Gu and Zhou, 2023](https://arxiv.org/abs/2305.09967)) describe an image by a sequence of tokens,
each encoding what the earlier ones left out. Encode an image, step through its tokens, see what each one adds and where (its mask),
then switch, scale, move or transplant tokens: an edit only decodes, it never re-encodes."""


VIEWS_GUIDE = """**Reading the views**

*First k tokens*: the image rebuilt from tokens 1 to k.
*Token k alone*: what token k adds, over the mid-grey of the empty reconstruction.
*Signed*: the same addition summed over the colours, red adding light and blue removing it, scaled to its largest value.
*Mask*: where token k claims the image (masked VLE); a vanilla VLE has no masks, so this shows how much it changes each pixel.
*Regions*: each pixel tinted by the token that claims it most (vanilla: that changes it most), the selected token lit.
Click a region to select its token, here and in Edit."""


def build_demo() -> gr.Blocks:
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    summary, card = on_checkpoint_info(default)
    with gr.Blocks(title="VLE Explorer", delete_cache=(3600, 3600)) as demo:
        state = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                image = image_input(label="Image", sources=["upload", "webcam", "clipboard"], height=300, elem_id="image")
                gr.Examples(example_images(), inputs=[image], label="Examples (assets/)", examples_per_page=6)
                checkpoint = gr.Dropdown(choices=choices, value=default, label="Checkpoint", allow_custom_value=True, elem_id="checkpoint")
                checkpoint_summary_md = gr.Markdown(summary)
                with gr.Accordion("Model card", open=False):
                    card_md = gr.Markdown(card)
                with gr.Row():
                    working_size = gr.Slider(
                        *settings.WORKING_SIZE_RANGE, value=settings.WORKING_SIZE, step=32, label="Working size (long side, px)", elem_id="working-size"
                    )
                    n_tokens = gr.Slider(1, settings.N_TOKENS_MAX, value=settings.N_TOKENS, step=1, label="Tokens to encode (N)", elem_id="n-tokens")
                info = gr.Markdown(label="About this encoding", elem_id="info")
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Tokens"):
                        k = gr.Slider(1, settings.N_TOKENS, value=settings.N_TOKENS, step=1, label="First k tokens", elem_id="tokens")
                        caption = gr.Markdown(label="Caption", elem_id="caption")
                        with gr.Row():
                            view = dict(format="png", height=220, interactive=False)
                            recon = gr.Image(label="First k tokens", elem_id="recon", **view)
                            alone = gr.Image(label="Token k alone", elem_id="alone", **view)
                            heat = gr.Image(label="Token k, signed", elem_id="heatmap", **view)
                            mask = gr.Image(label="Token k's mask", elem_id="mask", **view)
                        with gr.Row():
                            overlay = gr.Image(
                                label="Regions: click one to select its token", format="png", height=300, interactive=False, elem_id="overlay", scale=2
                            )
                            gr.Markdown(VIEWS_GUIDE)
                        strip = gr.Image(label="All tokens, like the paper's Figs. 3, 5 and 6", format="png", interactive=False, elem_id="strip")
                    with gr.Tab("Quality"):
                        with gr.Row():
                            metric = gr.Radio(list(TARGETS), value="PSNR", label="Target metric", scale=1)
                            target = gr.Number(TARGETS["PSNR"], label="Target (PSNR in dB; MSE on [0, 1] pixels, the paper's 0.003 is 0.00075 here)", scale=2)
                        curve = gr.Plot(label="Quality against the number of tokens", elem_id="curve")
                        quality_md = gr.Markdown(label="Tokens needed and entropy", elem_id="quality")
                    with gr.Tab("Edit"):
                        with gr.Row():
                            edited_img = gr.Image(
                                label="Edited image: click to move the selected token there", format="png", height=360, interactive=False, elem_id="edited"
                            )
                            edit_overlay_img = gr.Image(
                                label="Edited tokens: click a region to select its token", format="png", height=360, interactive=False, elem_id="edit-overlay"
                            )
                        edit_log = gr.Markdown(label="Edits", elem_id="edit-log")
                        tokens_on = gr.CheckboxGroup(label="Tokens on", elem_id="tokens-on")
                        with gr.Row():
                            edit_token = gr.Slider(1, settings.N_TOKENS, value=1, step=1, label="Selected token", elem_id="edit-token")
                            strength = gr.Slider(0, 3, value=1, step=0.05, label="Strength", elem_id="strength")
                            dx = gr.Slider(-settings.WORKING_SIZE, settings.WORKING_SIZE, value=0, step=1, label="Move right (px)", elem_id="dx")
                            dy = gr.Slider(-settings.WORKING_SIZE, settings.WORKING_SIZE, value=0, step=1, label="Move down (px)", elem_id="dy")
                        with gr.Row():
                            solo_btn = gr.Button("Solo selected", elem_id="solo")
                            all_on_btn = gr.Button("All on", elem_id="all-on")
                            undo_btn = gr.Button("Undo", elem_id="undo")
                            reset_btn = gr.Button("Reset", variant="stop", elem_id="reset")
                        with gr.Row():
                            seed = gr.Number(0, precision=0, label="Scatter seed", min_width=100)
                            scatter_btn = gr.Button("Scatter all tokens at random", elem_id="scatter")
                        with gr.Accordion("Transplant a token from a second image", open=False):
                            with gr.Row():
                                donor = image_input(label="Donor image", sources=["upload", "clipboard"], height=240, elem_id="donor")
                                donor_view = gr.Image(label="Donor tokens (the chosen one lit)", format="png", height=240, interactive=False)
                            with gr.Row():
                                donor_token = gr.Slider(1, settings.N_TOKENS, value=1, step=1, label="Donor token")
                                transplant_btn = gr.Button("Transplant", elem_id="transplant")
                    with gr.Tab("Export"):
                        with gr.Row():
                            gif_btn = gr.Button("Progressive reconstruction (GIF)", elem_id="export-gif")
                            strip_btn = gr.Button("Token strip (PNG)", elem_id="export-strip")
                            tokens_btn = gr.Button("Edited tokens (safetensors)", elem_id="export-tokens")
                        export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
                        tokens_file = gr.File(
                            label="Load a tokens file to view and edit it (needs the checkpoint that made it)",
                            file_types=[".safetensors"],
                            elem_id="tokens-file",
                        )
                    with gr.Tab("Compare"):
                        with gr.Row():
                            compare_a = gr.Dropdown(choices=choices, value=default, label="Checkpoint A", allow_custom_value=True)
                            compare_b = gr.Dropdown(choices=choices, value=second, label="Checkpoint B", allow_custom_value=True)
                            compare_k = gr.Slider(1, settings.N_TOKENS_MAX, value=8, step=1, label="First k tokens")
                            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
                        with gr.Row():
                            recon_a = gr.Image(label="A: first k tokens", format="png", height=256, interactive=False)
                            recon_b = gr.Image(label="B: first k tokens", format="png", height=256, interactive=False)
                            overlay_a = gr.Image(label="A: token k's region", format="png", height=256, interactive=False)
                            overlay_b = gr.Image(label="B: token k's region", format="png", height=256, interactive=False)
                        compare_plot = gr.Plot(label="Both checkpoints (A solid, B dashed)", elem_id="compare-plot")
                        compare_md = gr.Markdown(label="Comparison")

        edit_outputs = [state, edited_img, edit_overlay_img, tokens_on, edit_token, strength, dx, dy, edit_log]
        session_outputs_ = [state, info, k, recon, alone, heat, mask, overlay, caption, donor_token]
        token_outputs = [recon, alone, heat, mask, overlay, caption]
        model = dict(concurrency_id="model", concurrency_limit=1)  # one model call at a time on 2 cores

        encoded = gr.on(
            [image.change, n_tokens.release, working_size.release, checkpoint.input],
            on_encode,
            [image, n_tokens, working_size, checkpoint],
            session_outputs_,
            api_name="encode",
            **model,
        )
        curve_inputs, curve_outputs = [metric, target, state], [curve, quality_md]
        details = [strip, *edit_outputs[1:]]
        encoded.success(on_details, [state], details, api_visibility="private", **model).success(
            on_curve, curve_inputs, curve_outputs, api_visibility="private", **model
        )
        k.change(on_token, [k, state], token_outputs, api_name="token", show_progress="hidden", trigger_mode="always_last")
        overlay.select(on_select_token, [state], [k, edit_token], api_visibility="private", show_progress="hidden")
        checkpoint.change(on_checkpoint_info, [checkpoint], [checkpoint_summary_md, card_md], api_visibility="private", show_progress="hidden")

        metric.input(on_target_metric, [metric], [target], api_visibility="private", show_progress="hidden")
        target.change(on_curve, curve_inputs, curve_outputs, api_name="curve", trigger_mode="always_last", **model)

        tokens_on.input(on_switch, [tokens_on, state, edit_token], edit_outputs, api_name="switch", **model)
        all_on_btn.click(on_all_on, [state, edit_token], edit_outputs, api_name="all_on", **model)
        solo_btn.click(on_solo, [edit_token, state], edit_outputs, api_name="solo", **model)
        strength.release(on_strength, [edit_token, strength, state], edit_outputs, api_name="strength", **model)
        gr.on([dx.release, dy.release], on_move, [edit_token, dx, dy, state], edit_outputs, api_name="move", **model)
        edited_img.select(on_move_to, [edit_token, state], edit_outputs, api_visibility="private", **model)
        edit_overlay_img.select(on_select_edit_token, [state], [edit_token], api_visibility="private", show_progress="hidden")
        edit_token.change(on_pick_edit_token, [edit_token, state], [strength, dx, dy, edit_overlay_img], api_visibility="private", show_progress="hidden")
        scatter_btn.click(on_scatter, [seed, state, edit_token], edit_outputs, api_name="scatter", **model)
        undo_btn.click(on_undo, [state, edit_token], edit_outputs, api_name="undo", **model)
        reset_btn.click(on_reset, [state, edit_token], edit_outputs, api_name="reset", **model)
        gr.on([donor.change, donor_token.release], on_donor, [donor, donor_token, state], [donor_view, donor_token], api_visibility="private", **model)
        transplant_btn.click(on_transplant, [donor, donor_token, state], edit_outputs, api_name="transplant", **model)

        gif_btn.click(on_export_gif, [state], [export_file], api_name="export_gif", **model)
        strip_btn.click(on_export_strip, [state], [export_file], api_name="export_strip", **model)
        tokens_btn.click(on_export_tokens, [state], [export_file], api_name="export_tokens", **model)
        loaded = tokens_file.upload(on_load_tokens, [tokens_file, checkpoint], session_outputs_, api_name="load_tokens", **model)
        loaded.success(on_details, [state], details, api_visibility="private", **model).success(
            on_curve, curve_inputs, curve_outputs, api_visibility="private", **model
        )

        gr.on(
            [compare_btn.click, compare_k.release],
            on_compare,
            [compare_a, compare_b, compare_k, state],
            [recon_a, recon_b, overlay_a, overlay_b, compare_plot, compare_md],
            api_name="compare",
            **model,
        )
        demo.load(on_page_load, None, [checkpoint, compare_a, compare_b], api_visibility="private", show_progress="hidden")
    return demo
