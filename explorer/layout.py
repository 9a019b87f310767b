"""The page: its components, and which handler each event calls. Every action a user takes is
also an API endpoint (api_name); the handlers live in one file per tab."""

import gradio as gr

from . import compare_tab, edit_tab, export_tab, quality_tab, settings, tokens_tab
from .images import image_input
from .models import checkpoint_choices, default_checkpoint, default_tokens
from .plots import TARGETS

INTRO = """# VLE Explorer
Variable Length Embeddings ([Chiu, Gu and Zhou, 2023](https://arxiv.org/abs/2305.09967)) describe an image by a sequence of tokens,
each encoding what the earlier ones left out. Encode an image, step through its tokens, see what each one adds and where (its mask),
then switch, scale, move or transplant tokens: an edit only decodes, it never re-encodes."""


VIEWS_GUIDE = """**Reading the views**

*First k tokens*: the image rebuilt from tokens 1 to k.
*Token k alone*: what token k adds, over the mid-grey of the empty reconstruction.
*Signed*: the same addition summed over the colours, red adding light and blue removing it, scaled to its largest value.
*Mask*: where token k claims the image (masked VLE); a vanilla VLE has no masks, so *where token k acts* shows how much it changes each pixel.
*Regions*: each pixel tinted by the token that claims it most (vanilla: that changes it most for its own size, so every token gets a region), the selected token lit.
Click a region to select its token, here and in Edit."""


def build_demo() -> gr.Blocks:
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    summary, card, _ = tokens_tab.on_checkpoint_info(default)
    with gr.Blocks(title="VLE Explorer", delete_cache=(3600, 3600)) as demo:
        state = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                image = image_input(label="Image", sources=["upload", "webcam", "clipboard"], height=300, elem_id="image")
                examples = gr.Examples(tokens_tab.example_images(), inputs=[image], label="Examples (assets/)", examples_per_page=6)
                checkpoint = gr.Dropdown(choices=choices, value=default, label="Checkpoint", allow_custom_value=True, elem_id="checkpoint")
                checkpoint_summary_md = gr.Markdown(summary)
                with gr.Row():
                    working_size = gr.Slider(
                        *settings.WORKING_SIZE_RANGE, value=settings.WORKING_SIZE, step=32, label="Working size (long side, px)", elem_id="working-size"
                    )
                    n_tokens = gr.Slider(1, settings.N_TOKENS_MAX, value=default_tokens(default), step=1, label="Tokens to encode (N)", elem_id="n-tokens")
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
                        gr.Markdown("**All tokens**, like the paper's Figs. 3, 5 and 6", elem_id="strip-title")
                        strip = gr.Image(show_label=False, format="png", interactive=False, elem_id="strip")
                        strip_md = gr.Markdown(elem_id="strip-legend")
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
                            compare_k = gr.Slider(
                                1, default_tokens(default), value=default_tokens(default), step=1, label="First k tokens", elem_id="compare-k"
                            )
                            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
                        with gr.Row():
                            recon_a = gr.Image(label="A: first k tokens", format="png", height=256, interactive=False, elem_id="recon-a")
                            recon_b = gr.Image(label="B: first k tokens", format="png", height=256, interactive=False, elem_id="recon-b")
                            overlay_a = gr.Image(label="A: token k's region", format="png", height=256, interactive=False, elem_id="overlay-a")
                            overlay_b = gr.Image(label="B: token k's region", format="png", height=256, interactive=False, elem_id="overlay-b")
                        compare_plot = gr.Plot(label="Both checkpoints (A solid, B dashed)", elem_id="compare-plot")
                        compare_md = gr.Markdown(label="Comparison", elem_id="compare-text")
        with gr.Accordion("Model card of the chosen checkpoint", open=False, elem_id="card"):
            card_md = gr.Markdown(card)

        edit_outputs = [state, edited_img, edit_overlay_img, tokens_on, edit_token, strength, dx, dy, edit_log]
        session_outputs = [state, info, k, recon, alone, heat, mask, overlay, caption, donor_token]
        compare_outputs = [recon_a, recon_b, overlay_a, overlay_b, compare_plot, compare_md]
        page_outputs = [*session_outputs, image, *compare_outputs, compare_k]  # tokens_tab.in_page
        token_outputs = [recon, alone, heat, mask, overlay, caption]
        curve_inputs, curve_outputs = [metric, target, state], [curve, quality_md]
        details = [strip, strip_md, *edit_outputs[1:]]
        model = dict(concurrency_id="model", concurrency_limit=1)  # one model call at a time on 2 cores
        encode_inputs = [image, n_tokens, working_size, checkpoint]
        page = dict(api_visibility="private", **model)

        def then_details(event):
            """After a new session: the strip and the Edit tab, the donor's tokens, the curve."""
            details_shown = event.success(tokens_tab.on_details, [state], details, **page)
            details_shown.success(edit_tab.on_donor, [donor, donor_token, state], [donor_view, donor_token], **page)
            details_shown.success(quality_tab.on_curve, curve_inputs, curve_outputs, **page)

        # Encoding. An upload fires `input` once (`change` fires twice when an image replaces another),
        # an example click only loads the image: each user action encodes once.
        then_details(gr.on([image.input, n_tokens.release, working_size.release], tokens_tab.on_encode_in_page, encode_inputs, page_outputs, **page))
        then_details(examples.load_input_event.then(tokens_tab.on_encode_in_page, encode_inputs, page_outputs, **page))
        switched = checkpoint.input(tokens_tab.on_checkpoint_info, [checkpoint], [checkpoint_summary_md, card_md, n_tokens], **page)
        then_details(switched.then(tokens_tab.on_encode_in_page, encode_inputs, page_outputs, **page))
        # The API's encode (README): the same handler, raising what the page shows in the info line.
        encode_api = gr.Button(visible=False, elem_id="encode-api")
        encode_api.click(tokens_tab.on_encode, encode_inputs, session_outputs, api_name="encode", **model)

        k.change(tokens_tab.on_token, [k, state], token_outputs, api_name="token", show_progress="hidden", trigger_mode="always_last")
        overlay.select(tokens_tab.on_select_token, [state], [k, edit_token], api_visibility="private", show_progress="hidden")

        metric.input(quality_tab.on_target_metric, [metric], [target], api_visibility="private", show_progress="hidden")
        target.change(quality_tab.on_curve, curve_inputs, curve_outputs, api_name="curve", trigger_mode="always_last", **model)

        tokens_on.input(edit_tab.on_switch, [tokens_on, state, edit_token], edit_outputs, api_name="switch", **model)
        all_on_btn.click(edit_tab.on_all_on, [state, edit_token], edit_outputs, api_name="all_on", **model)
        solo_btn.click(edit_tab.on_solo, [edit_token, state], edit_outputs, api_name="solo", **model)
        strength.release(edit_tab.on_strength, [edit_token, strength, state], edit_outputs, api_name="strength", **model)
        gr.on([dx.release, dy.release], edit_tab.on_move, [edit_token, dx, dy, state], edit_outputs, api_name="move", **model)
        edited_img.select(edit_tab.on_move_to, [edit_token, state], edit_outputs, **page)
        edit_overlay_img.select(edit_tab.on_select_edit_token, [state], [edit_token], api_visibility="private", show_progress="hidden")
        edit_token.change(
            edit_tab.on_pick_edit_token, [edit_token, state], [strength, dx, dy, edit_overlay_img], api_visibility="private", show_progress="hidden"
        )
        scatter_btn.click(edit_tab.on_scatter, [seed, state, edit_token], edit_outputs, api_name="scatter", **model)
        undo_btn.click(edit_tab.on_undo, [state, edit_token], edit_outputs, api_name="undo", **model)
        reset_btn.click(edit_tab.on_reset, [state, edit_token], edit_outputs, api_name="reset", **model)
        gr.on([donor.input, donor_token.release], edit_tab.on_donor, [donor, donor_token, state], [donor_view, donor_token], **page)
        transplant_btn.click(edit_tab.on_transplant, [donor, donor_token, state], edit_outputs, api_name="transplant", **model)

        gif_btn.click(export_tab.on_export_gif, [state], [export_file], api_name="export_gif", **model)
        strip_btn.click(export_tab.on_export_strip, [state], [export_file], api_name="export_strip", **model)
        tokens_btn.click(export_tab.on_export_tokens, [state], [export_file], api_name="export_tokens", **model)
        then_details(tokens_file.upload(export_tab.on_load_tokens_in_page, [tokens_file, checkpoint, image], page_outputs, **page))
        load_api = gr.Button(visible=False, elem_id="load-tokens-api")
        load_api.click(export_tab.on_load_tokens, [tokens_file, checkpoint], session_outputs, api_name="load_tokens", **model)

        gr.on(
            [compare_btn.click, compare_k.release],
            compare_tab.on_compare,
            [compare_a, compare_b, compare_k, state],
            compare_outputs,
            api_name="compare",
            **model,
        )
        page_load = [checkpoint, compare_a, compare_b, checkpoint_summary_md, card_md, n_tokens]
        demo.load(tokens_tab.on_page_load, None, page_load, api_visibility="private", show_progress="hidden")
    return demo
