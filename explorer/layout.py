"""The page: its components, and which handler each event calls. Every action a user takes is
also an API endpoint (api_name); the handlers live in one file per tab."""

from types import SimpleNamespace

import gradio as gr

from . import compare_tab, edit_tab, export_tab, quality_tab, settings, tokens_tab
from .images import image_input
from .models import checkpoint_choices, default_checkpoint, default_tokens
from .plots import TARGETS

INTRO = (
    "# VLE Explorer\n"
    "Variable Length Embeddings ([Chiu, Gu and Zhou, 2023](https://arxiv.org/abs/2305.09967)) describe an image "
    "by a sequence of tokens,\n"
    "each encoding what the earlier ones left out. Encode an image, step through its tokens, see what each one "
    "adds and where (its mask),\n"
    "then switch, scale, move or transplant tokens: an edit only decodes, it never re-encodes."
)


VIEWS_GUIDE = (
    "**Reading the views**\n"
    "\n"
    "*First k tokens*: the image rebuilt from tokens 1 to k.\n"
    "*Token k alone*: what token k adds, over the mid-grey of the empty reconstruction.\n"
    "*Signed*: the same addition summed over the colours, red adding light and blue removing it, scaled to its "
    "largest value.\n"
    "*Mask*: where token k claims the image (masked VLE); a vanilla VLE has no masks, so *where token k acts* "
    "shows how much it changes each pixel.\n"
    "*Regions*: each pixel tinted by the token that claims it most (vanilla: that changes it most for its own "
    "size, so every token gets a region), the selected token lit.\n"
    "Click a region to select its token, here and in Edit."
)


# The page's own styles, passed to launch() (gradio 6 takes css there): on a phone, the results
# come right after the image (the left column's other parts after them), side-by-side rows
# stack, and the token strip keeps its full size, scrolled sideways.
PHONE = 640  # px: narrower viewports get the phone layout
CSS = f"""
@media (max-width: {PHONE}px) {{
  #main-row {{ flex-direction: column; }}
  #left {{ display: contents; }}
  #left > * {{ order: 4; }}
  #left > #image {{ order: 1; }}
  #left > #info {{ order: 2; }}
  #results {{ order: 3; }}
  .stack-on-phone {{ flex-direction: column; }}
  #strip .image-container, #strip .image-frame {{ overflow-x: auto; justify-content: flex-start; }}
  #strip img {{ max-width: none; width: auto; height: auto; object-fit: none; }}
}}
"""


def launch_options() -> dict:
    """What launch() needs beside host and port: the page's styles and the upload bound."""
    return {"css": CSS, "max_file_size": settings.MAX_FILE_SIZE}


def build_demo() -> gr.Blocks:
    """The page: a left column (image, checkpoint, settings), a tab per view, the model card; then
    the events. Components are kept in one namespace, `ui`, that the events read."""
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    summary, card, _ = tokens_tab.on_checkpoint_info(default)
    with gr.Blocks(title="VLE Explorer", delete_cache=(3600, 3600)) as demo:
        ui = SimpleNamespace(
            demo=demo, state=gr.State(None, time_to_live=settings.STATE_TTL_S), default_n=default_tokens(default)
        )
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False, elem_id="main-row"):
            with gr.Column(scale=1, min_width=320, elem_id="left"):
                left_column(ui, choices, default, summary)
            # on a phone, every tab in sight
            with gr.Column(scale=3, elem_id="results"), gr.Tabs(overflow_behavior="wrap"):
                with gr.Tab("Tokens"):
                    tokens_tab_ui(ui)
                with gr.Tab("Quality"):
                    quality_tab_ui(ui)
                with gr.Tab("Edit"):
                    edit_tab_ui(ui)
                with gr.Tab("Export"):
                    export_tab_ui(ui)
                with gr.Tab("Compare"):
                    compare_tab_ui(ui, choices, default, second)
        with gr.Accordion("Model card of the chosen checkpoint", open=False, elem_id="card"):
            ui.card_md = gr.Markdown(card)
        wire(ui)
    return demo


def left_column(ui, choices, default: str | None, summary: str) -> None:
    """The image (upload, webcam, clipboard, examples), the checkpoint, the working size and N."""
    first = tokens_tab.default_example(default)  # encoded on page load
    ui.image = image_input(
        value=first, label="Image", sources=["upload", "webcam", "clipboard"], height=300, elem_id="image"
    )
    ui.checkpoint = gr.Dropdown(
        choices=choices, value=default, label="Checkpoint", allow_custom_value=True, elem_id="checkpoint", render=False
    )
    ui.examples = gr.Examples(
        tokens_tab.example_rows(),
        inputs=[ui.image, ui.checkpoint],
        label="Examples (assets/), each with its checkpoint",
        examples_per_page=6,
    )
    ui.checkpoint.render()
    ui.checkpoint_summary_md = gr.Markdown(summary)
    with gr.Row():
        ui.working_size = gr.Slider(
            *settings.WORKING_SIZE_RANGE,
            value=settings.WORKING_SIZE,
            step=32,
            label="Working size (long side, px)",
            elem_id="working-size",
        )
        ui.n_tokens = gr.Slider(
            1,
            settings.N_TOKENS_MAX,
            value=default_tokens(default),
            step=1,
            label="Tokens to encode (N)",
            elem_id="n-tokens",
        )
    with gr.Row():
        ui.length = gr.Radio(
            list(settings.LENGTH_MODES), value=settings.LENGTH_MODES[0], label="Length", elem_id="length"
        )
        ui.target_psnr = gr.Number(
            settings.TARGET_PSNR,
            label=f"Until PSNR (dB), at most {settings.N_TOKENS_MAX} tokens",
            interactive=False,
            elem_id="target-psnr",
        )
    ui.info = gr.Markdown(label="About this encoding", elem_id="info")


def tokens_tab_ui(ui) -> None:
    """The token slider, the four views of token k, the regions and the strip."""
    ui.k = gr.Slider(1, ui.default_n, value=ui.default_n, step=1, label="First k tokens", elem_id="tokens")
    ui.caption = gr.Markdown(label="Caption", elem_id="caption")
    with gr.Row():
        # no toolbar over the picture (Export saves them)
        view = dict(format="png", height=220, interactive=False, buttons=[])
        ui.recon = gr.Image(label="First k tokens", elem_id="recon", **view)
        ui.alone = gr.Image(label="Token k alone", elem_id="alone", **view)
        ui.heat = gr.Image(label="Token k, signed", elem_id="heatmap", **view)
        ui.mask = gr.Image(label="Token k's mask", elem_id="mask", **view)
    with gr.Row(elem_classes="stack-on-phone"):
        ui.overlay = gr.Image(
            label="Regions: click one to select its token",
            format="png",
            height=300,
            interactive=False,
            buttons=[],
            elem_id="overlay",
            scale=2,
        )
        gr.Markdown(VIEWS_GUIDE)
    gr.Markdown("**All tokens**, like the paper's Figs. 3, 5 and 6", elem_id="strip-title")
    ui.strip = gr.Image(show_label=False, format="png", interactive=False, buttons=["fullscreen"], elem_id="strip")
    ui.strip_md = gr.Markdown(elem_id="strip-legend")


def quality_tab_ui(ui) -> None:
    with gr.Row():
        ui.metric = gr.Radio(list(TARGETS), value="PSNR", label="Target metric", scale=1)
        ui.target = gr.Number(
            TARGETS["PSNR"],
            label="Target (PSNR in dB; MSE on [0, 1] pixels, the paper's 0.003 is 0.00075 here)",
            scale=2,
        )
    ui.curve = gr.Plot(label="Quality against the number of tokens", elem_id="curve")
    ui.quality_md = gr.Markdown(label="Tokens needed and entropy", elem_id="quality")


def edit_tab_ui(ui) -> None:
    """The edited image and its tokens, the edit controls, the transplant."""
    with gr.Row():
        ui.edited_img = gr.Image(
            label="Edited image: click to move the selected token there",
            format="png",
            height=360,
            interactive=False,
            buttons=[],
            elem_id="edited",
        )
        ui.edit_overlay_img = gr.Image(
            label="Edited tokens: click a region to select its token",
            format="png",
            height=360,
            interactive=False,
            buttons=[],
            elem_id="edit-overlay",
        )
    ui.edit_log = gr.Markdown(label="Edits", elem_id="edit-log")
    ui.tokens_on = gr.CheckboxGroup(label="Tokens on", elem_id="tokens-on")
    with gr.Row():
        ui.edit_token = gr.Slider(
            0, settings.N_TOKENS, value=0, step=1, label="Selected token (0: none)", elem_id="edit-token"
        )
        ui.strength = gr.Slider(0, 3, value=1, step=0.05, label="Strength", elem_id="strength")
        ui.dx = gr.Slider(
            -settings.WORKING_SIZE, settings.WORKING_SIZE, value=0, step=1, label="Move right (px)", elem_id="dx"
        )
        ui.dy = gr.Slider(
            -settings.WORKING_SIZE, settings.WORKING_SIZE, value=0, step=1, label="Move down (px)", elem_id="dy"
        )
    with gr.Row():
        ui.remove_btn = gr.Button("Remove selected", elem_id="remove")
        ui.solo_btn = gr.Button("Solo selected", elem_id="solo")
        ui.all_on_btn = gr.Button("All on", elem_id="all-on")
        ui.undo_btn = gr.Button("Undo", elem_id="undo")
        ui.reset_btn = gr.Button("Reset", variant="stop", elem_id="reset")
    with gr.Row():
        ui.seed = gr.Number(0, precision=0, label="Scatter seed", min_width=100)
        ui.scatter_btn = gr.Button("Scatter all tokens at random", elem_id="scatter")
    with gr.Accordion("Transplant a token from a second image", open=False):
        with gr.Row():
            ui.donor = image_input(label="Donor image", sources=["upload", "clipboard"], height=240, elem_id="donor")
            ui.donor_view = gr.Image(
                label="Donor tokens (the chosen one lit)", format="png", height=240, interactive=False
            )
        with gr.Row():
            ui.donor_token = gr.Slider(1, settings.N_TOKENS, value=1, step=1, label="Donor token")
            ui.transplant_btn = gr.Button("Transplant", elem_id="transplant")


def export_tab_ui(ui) -> None:
    with gr.Row():
        ui.gif_btn = gr.Button("Progressive reconstruction (GIF)", elem_id="export-gif")
        ui.strip_btn = gr.Button("Token strip (PNG)", elem_id="export-strip")
        ui.tokens_btn = gr.Button("Edited tokens (safetensors)", elem_id="export-tokens")
    ui.export_file = gr.File(label="Download", interactive=False, elem_id="export-file")
    ui.tokens_file = gr.File(
        label="Load a tokens file to view and edit it (needs the checkpoint that made it)",
        file_types=[".safetensors"],
        elem_id="tokens-file",
    )


def compare_tab_ui(ui, choices, default: str | None, second: str | None) -> None:
    with gr.Row():
        ui.compare_a = gr.Dropdown(choices=choices, value=default, label="Checkpoint A", allow_custom_value=True)
        ui.compare_b = gr.Dropdown(choices=choices, value=second, label="Checkpoint B", allow_custom_value=True)
        ui.compare_k = gr.Slider(
            1,
            default_tokens(default),
            value=default_tokens(default),
            step=1,
            label="First k tokens",
            elem_id="compare-k",
        )
        ui.compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
    with gr.Row():
        ui.recon_a = gr.Image(
            label="A: first k tokens", format="png", height=256, interactive=False, buttons=[], elem_id="recon-a"
        )
        ui.recon_b = gr.Image(
            label="B: first k tokens", format="png", height=256, interactive=False, buttons=[], elem_id="recon-b"
        )
        ui.overlay_a = gr.Image(
            label="A: token k's region", format="png", height=256, interactive=False, buttons=[], elem_id="overlay-a"
        )
        ui.overlay_b = gr.Image(
            label="B: token k's region", format="png", height=256, interactive=False, buttons=[], elem_id="overlay-b"
        )
    ui.compare_plot = gr.Plot(label="Both checkpoints (A solid, B dashed)", elem_id="compare-plot")
    ui.compare_md = gr.Markdown(label="Comparison", elem_id="compare-text")


def wire(ui) -> None:
    """Which handler each event calls. The page's own events are private; each action is also a
    public API endpoint under the name README documents."""
    edit_outputs = [
        ui.state,
        ui.edited_img,
        ui.edit_overlay_img,
        ui.tokens_on,
        ui.edit_token,
        ui.strength,
        ui.dx,
        ui.dy,
        ui.edit_log,
    ]
    session_outputs = [
        ui.state,
        ui.info,
        ui.k,
        ui.recon,
        ui.alone,
        ui.heat,
        ui.mask,
        ui.overlay,
        ui.caption,
        ui.donor_token,
    ]
    compare_outputs = [ui.recon_a, ui.recon_b, ui.overlay_a, ui.overlay_b, ui.compare_plot, ui.compare_md]
    page_outputs = [*session_outputs, ui.image, *compare_outputs, ui.compare_k, ui.compare_a]  # pages.in_page
    token_outputs = [ui.recon, ui.alone, ui.heat, ui.mask, ui.overlay, ui.caption]
    curve_inputs, curve_outputs = [ui.metric, ui.target, ui.state], [ui.curve, ui.quality_md]
    details = [ui.strip, ui.strip_md, *edit_outputs[1:]]
    # Each kind of event has its own queue, so a cheap one never waits behind a slow one: encodes
    # (hundreds of ms to seconds) one at a time; edits (a token or two decoded) two at a time beside
    # them; exports (drawing only) apart; views of cached arrays four at a time. benchmarks/loadtest.py measures it.
    encoder = dict(concurrency_id="encoder", concurrency_limit=1)
    decoder = dict(concurrency_id="decoder", concurrency_limit=2)
    exporter = dict(concurrency_id="exporter", concurrency_limit=1)
    viewer = dict(concurrency_id="viewer", concurrency_limit=4)
    encode_inputs = [ui.image, ui.n_tokens, ui.working_size, ui.checkpoint, ui.length, ui.target_psnr]
    page_encode_inputs = [*encode_inputs, ui.state]  # the page's encodes keep the session if refused (pages.in_page)
    page_encoder = dict(api_visibility="private", **encoder)
    page_decoder = dict(api_visibility="private", **decoder)

    def then_details(event):
        """After a new session: the strip and the Edit tab, the donor's tokens, the curve."""
        details_shown = event.success(tokens_tab.on_details, [ui.state], details, **page_decoder)
        details_shown.success(
            edit_tab.on_donor, [ui.donor, ui.donor_token, ui.state], [ui.donor_view, ui.donor_token], **page_encoder
        )
        details_shown.success(quality_tab.on_curve, curve_inputs, curve_outputs, **page_decoder)

    # Encoding. An upload fires `input` once (`change` fires twice when an image replaces another),
    # an example click only loads the image: each user action encodes once.
    then_details(
        gr.on(
            [ui.image.input, ui.n_tokens.release, ui.working_size.release, ui.target_psnr.submit],
            tokens_tab.on_encode_in_page,
            page_encode_inputs,
            page_outputs,
            **page_encoder,
        )
    )
    length_mode = ui.length.input(
        tokens_tab.on_length_mode,
        [ui.length],
        [ui.n_tokens, ui.target_psnr],
        api_visibility="private",
        show_progress="hidden",
    )
    then_details(length_mode.then(tokens_tab.on_encode_in_page, page_encode_inputs, page_outputs, **page_encoder))
    example_info = ui.examples.load_input_event.then(
        tokens_tab.on_checkpoint_info,
        [ui.checkpoint],
        [ui.checkpoint_summary_md, ui.card_md, ui.n_tokens],
        **page_encoder,
    )
    then_details(example_info.then(tokens_tab.on_encode_in_page, page_encode_inputs, page_outputs, **page_encoder))
    switched = ui.checkpoint.input(
        tokens_tab.on_checkpoint_info,
        [ui.checkpoint],
        [ui.checkpoint_summary_md, ui.card_md, ui.n_tokens],
        **page_encoder,
    )
    then_details(switched.then(tokens_tab.on_encode_in_page, page_encode_inputs, page_outputs, **page_encoder))
    # The API's encode (README): the same handler, raising what the page shows in the info line.
    encode_api = gr.Button(visible=False, elem_id="encode-api")
    encode_api.click(
        tokens_tab.on_encode_api, encode_inputs, [*session_outputs, ui.tokens_on], api_name="encode", **encoder
    )

    ui.k.change(
        tokens_tab.on_token,
        [ui.k, ui.state],
        token_outputs,
        api_name="token",
        show_progress="hidden",
        trigger_mode="always_last",
        **viewer,
    )
    ui.overlay.select(
        tokens_tab.on_select_token, [ui.state], [ui.k, ui.edit_token], api_visibility="private", show_progress="hidden"
    )

    ui.metric.input(
        quality_tab.on_target_metric, [ui.metric], [ui.target], api_visibility="private", show_progress="hidden"
    )
    ui.target.change(
        quality_tab.on_curve, curve_inputs, curve_outputs, api_name="curve", trigger_mode="always_last", **decoder
    )

    ui.tokens_on.input(
        edit_tab.on_switch, [ui.tokens_on, ui.state, ui.edit_token], edit_outputs, api_name="switch", **decoder
    )
    ui.all_on_btn.click(edit_tab.on_all_on, [ui.state, ui.edit_token], edit_outputs, api_name="all_on", **decoder)
    ui.remove_btn.click(edit_tab.on_remove, [ui.edit_token, ui.state], edit_outputs, api_name="remove", **decoder)
    ui.solo_btn.click(edit_tab.on_solo, [ui.edit_token, ui.state], edit_outputs, api_name="solo", **decoder)
    ui.strength.release(
        edit_tab.on_strength, [ui.edit_token, ui.strength, ui.state], edit_outputs, api_name="strength", **decoder
    )
    gr.on(
        [ui.dx.release, ui.dy.release],
        edit_tab.on_move,
        [ui.edit_token, ui.dx, ui.dy, ui.state],
        edit_outputs,
        api_name="move",
        **decoder,
    )
    ui.edited_img.select(edit_tab.on_move_to, [ui.edit_token, ui.state], edit_outputs, **page_decoder)
    ui.edit_overlay_img.select(
        edit_tab.on_select_edit_token, [ui.state], [ui.edit_token], api_visibility="private", show_progress="hidden"
    )
    ui.edit_token.change(
        edit_tab.on_pick_edit_token,
        [ui.edit_token, ui.state],
        [ui.strength, ui.dx, ui.dy, ui.edit_overlay_img],
        api_visibility="private",
        show_progress="hidden",
    )
    ui.scatter_btn.click(
        edit_tab.on_scatter, [ui.seed, ui.state, ui.edit_token], edit_outputs, api_name="scatter", **decoder
    )
    ui.undo_btn.click(edit_tab.on_undo, [ui.state, ui.edit_token], edit_outputs, api_name="undo", **decoder)
    ui.reset_btn.click(edit_tab.on_reset, [ui.state, ui.edit_token], edit_outputs, api_name="reset", **decoder)
    gr.on(
        [ui.donor.input, ui.donor_token.release],
        edit_tab.on_donor,
        [ui.donor, ui.donor_token, ui.state],
        [ui.donor_view, ui.donor_token],
        **page_encoder,
    )
    ui.transplant_btn.click(
        edit_tab.on_transplant, [ui.donor, ui.donor_token, ui.state], edit_outputs, api_name="transplant", **encoder
    )

    ui.gif_btn.click(export_tab.on_export_gif, [ui.state], [ui.export_file], api_name="export_gif", **exporter)
    ui.strip_btn.click(export_tab.on_export_strip, [ui.state], [ui.export_file], api_name="export_strip", **exporter)
    ui.tokens_btn.click(export_tab.on_export_tokens, [ui.state], [ui.export_file], api_name="export_tokens", **exporter)
    then_details(
        ui.tokens_file.upload(
            export_tab.on_load_tokens_in_page,
            [ui.tokens_file, ui.checkpoint, ui.image, ui.state],
            page_outputs,
            **page_encoder,
        )
    )
    load_api = gr.Button(visible=False, elem_id="load-tokens-api")
    load_api.click(
        export_tab.on_load_tokens, [ui.tokens_file, ui.checkpoint], session_outputs, api_name="load_tokens", **encoder
    )

    gr.on(
        [ui.compare_btn.click, ui.compare_k.release],
        compare_tab.on_compare,
        [ui.compare_a, ui.compare_b, ui.compare_k, ui.state],
        compare_outputs,
        api_name="compare",
        **encoder,
    )
    page_load = [ui.checkpoint, ui.compare_a, ui.compare_b, ui.checkpoint_summary_md, ui.card_md, ui.n_tokens]
    loaded = ui.demo.load(tokens_tab.on_page_load, None, page_load, api_visibility="private", show_progress="hidden")
    # the default example, from the cache
    then_details(loaded.then(tokens_tab.on_encode_in_page, page_encode_inputs, page_outputs, **page_encoder))


BUSY = "The app is busy: {waiting} requests are waiting, the most it takes. Please try again in a minute."


def queue(demo: gr.Blocks, max_size: int | None = None) -> gr.Blocks:
    """The page's queue, bounded: past max_size waiting requests (settings.QUEUE_SIZE) a new one is
    refused at once with BUSY (HTTP 503; gradio_client raises "Queue is full! Please try again.")
    rather than left to wait minutes behind the others."""
    demo.queue(max_size=settings.QUEUE_SIZE if max_size is None else max_size, default_concurrency_limit=4)
    # Gradio (6.31) offers no public way to word this refusal: Blocks.queue and launch take the
    # queue's size only, and its Queue.push answers "Queue is full. Max size is N and size is N.".
    # So push is wrapped, on this demo's own queue object. tests/test_load.py's busy test fails if
    # gradio renames push, changes its arguments or answer, or stops calling it through the object.
    push = demo._queue.push

    async def push_or_busy(body, request, username):
        accepted, detail, status = await push(body, request, username)
        if status == "queue_full":
            detail = BUSY.format(waiting=len(demo._queue))
        return accepted, detail, status

    demo._queue.push = push_or_busy
    return demo
