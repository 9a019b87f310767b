"""End to end in a real headless browser (Debian's chromium driven by playwright): upload an
image, move the token slider, relocate a token by clicking, and check the shown images change.

Run as a script to refresh the README screenshots in docs/ with real checkpoints:
    VLE_CHECKPOINTS=checkpoints python tests/test_browser.py
"""

import io
import os
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own use of pandas

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 45_000  # per wait: the tiny checkpoints encode in well under a second, a loaded 2-core machine in seconds


def serve(checkpoints, cache, default: str | None = None):
    """Launch the app on a free port; returns (demo, url)."""
    from conftest import free_port

    import explorer
    from explorer import settings

    explorer.configure(checkpoints=checkpoints, cache_dir=cache, cache_mb=256)
    settings.DEFAULT_CHECKPOINT = default or settings.DEFAULT_CHECKPOINT
    demo = explorer.build_demo()
    demo.queue(max_size=16)
    _, url, _ = demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_port(),
        quiet=True,
        **explorer.launch_options(),
    )
    return demo, url


def open_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def image_bytes(page, selector: str) -> bytes:
    """The bytes of the picture an <img> shows (fetched again from the server)."""
    src = page.locator(selector).get_attribute("src")
    return page.request.get(src).body()


def wait_for_new_src(page, selector: str, old: str | None):
    page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel); return img && img.src && img.src !== old; }",
        arg=[selector, old],
        timeout=TIMEOUT_MS,
    )
    return page.locator(selector).get_attribute("src")


def click_picture(page, selector: str, fx: float, fy: float) -> None:
    """Click at a fraction (fx, fy) of the picture an <img> shows: the element is often larger
    than the picture, which object-fit centres in it."""
    x, y = page.evaluate(
        """([sel, fx, fy]) => {
            const img = document.querySelector(sel), r = img.getBoundingClientRect();
            let s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
            if (getComputedStyle(img).objectFit === "scale-down") s = Math.min(s, 1);
            const w = img.naturalWidth * s, h = img.naturalHeight * s;
            return [r.left + (r.width - w) / 2 + fx * w, r.top + (r.height - h) / 2 + fy * h];
        }""",
        [selector, fx, fy],
    )
    page.mouse.click(x, y)


def goto_first_result(page, url: str) -> str:
    """Open the app and wait for what it shows on arrival, the default example's tokens (the
    strip comes last); returns the src of the reconstruction shown."""
    page.goto(url)
    page.wait_for_selector(".gradio-container", timeout=TIMEOUT_MS)
    page.wait_for_selector("#strip img", state="attached", timeout=TIMEOUT_MS)
    return page.locator("#recon img").get_attribute("src")


def upload_and_encode(page, url: str, image: str):
    first = goto_first_result(page, url)
    page.locator("#image input[type=file]").set_input_files(image)
    return wait_for_new_src(page, "#recon img", first)


def test_upload_slide_and_relocate_in_a_real_browser(tmp_path, monkeypatch):
    required = os.environ.get("VLE_REQUIRE_BROWSER") == "1"  # CI: a missing browser is a failure, not a skip
    if not Path(CHROMIUM).exists():
        (pytest.fail if required else pytest.skip)(f"no browser at {CHROMIUM}")
    try:
        import playwright.sync_api as sync_api
    except ImportError:
        (pytest.fail if required else pytest.skip)("playwright is not installed")
    from app_helpers import make_checkpoints, save_png
    from conftest import synthetic_image

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    make_checkpoints(tmp_path / "checkpoints")
    image = save_png(tmp_path, "scene.png", synthetic_image(64, 96))
    demo, url = serve(tmp_path / "checkpoints", tmp_path / "cache", default="masked-tiny")
    try:
        with sync_api.sync_playwright() as p:
            browser = open_browser(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                src = upload_and_encode(page, url, image)
                assert "used as is" in page.locator("#info").inner_text()
                full = image_bytes(page, "#recon img")

                page.locator("#tokens input[type=range]").focus()
                page.keyboard.press("Home")  # the slider to k = 1
                wait_for_new_src(page, "#recon img", src)
                page.wait_for_function(
                    "() => document.querySelector('#caption').innerText.includes('First 1 of')", timeout=TIMEOUT_MS
                )
                assert image_bytes(page, "#recon img") != full

                page.get_by_role("tab", name="Edit").click()
                edited = page.locator("#edited img")
                edited.wait_for(state="visible", timeout=TIMEOUT_MS)
                before_src, before = edited.get_attribute("src"), image_bytes(page, "#edited img")
                click_picture(page, "#edited img", 0.85, 0.8)  # move token 1 there
                wait_for_new_src(page, "#edited img", before_src)
                page.wait_for_function(
                    "() => document.querySelector('#edit-log').innerText.includes('moved by')", timeout=TIMEOUT_MS
                )
                assert image_bytes(page, "#edited img") != before
                assert not errors, errors
            finally:
                browser.close()
    finally:
        demo.close()


def held_out_object_scene(vle):
    """(seed, scene, the top object's token, 0-based) of the first held-out scene whose top object
    is large, found by one token (IoU over 0.9), on a background far from the empty grey."""
    from vle_core.scenes import HELDOUT_SEED, SEED_STRIDE, make_scene

    for i in range(200):
        seed = HELDOUT_SEED * SEED_STRIDE + i
        scene = make_scene(seed)
        top = scene.labels == scene.num_objects
        background = scene.image[scene.labels == 0].astype(float) / 255
        if top.mean() < 0.06 or np.abs(background.mean(0) - 0.5).max() < 0.2:
            continue
        masks = vle.encode(scene.image, 8).masks > 0.5
        ious = [(m & top).sum() / (m | top).sum() for m in masks]
        if max(ious) > 0.9:
            return seed, scene, int(np.argmax(ious))
    raise AssertionError("no held-out scene fits")


def test_a_moved_object_leaves_what_was_behind_it_in_a_real_browser(tmp_path, monkeypatch):
    """The shipped masked-scenes checkpoint, a held-out scene: the tab starts on a region token; the
    top object's token moved by a click leaves the scene's background where the object was, not the
    empty grey; "Remove selected" takes the object away; the GIF export ends on the edits (issue 28)."""
    sync_api = need_browser()
    from app_helpers import save_png
    from PIL import Image

    import vle_core
    from vle_core.scenes import edited_scene

    shipped = Path(__file__).resolve().parents[1] / "checkpoints"
    seed, scene, token = held_out_object_scene(vle_core.load_vle(shipped / "masked-scenes", device="cpu"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    demo, url = serve(shipped, tmp_path / "cache", default="masked-scenes")
    try:
        with sync_api.sync_playwright() as p:
            browser = open_browser(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                upload_and_encode(page, url, save_png(tmp_path, "scene.png", scene.image))
                page.get_by_role("tab", name="Edit").click()
                edited = page.locator("#edited img")
                edited.wait_for(state="visible", timeout=TIMEOUT_MS)
                first = page.locator("#edit-token input[type=number]").input_value()
                page.locator("#edit-token input[type=number]").fill(str(token + 1))
                page.locator("#edit-token input[type=number]").press("Enter")
                page.wait_for_timeout(1000)
                src = edited.get_attribute("src")
                ys, xs = np.nonzero(scene.labels == scene.num_objects)
                far = (0.15 if xs.mean() > 32 else 0.85, 0.15 if ys.mean() > 32 else 0.85)  # the opposite corner
                click_picture(page, "#edited img", *far)
                wait_for_new_src(page, "#edited img", src)
                page.wait_for_function(
                    "() => document.querySelector('#edit-log').innerText.includes('moved by')", timeout=TIMEOUT_MS
                )
                dx = round(float(page.locator("#dx input[type=number]").input_value()))
                dy = round(float(page.locator("#dy input[type=number]").input_value()))
                shown = picture_64(image_bytes(page, "#edited img"))

                src = edited.get_attribute("src")
                page.locator("#remove").click()
                wait_for_new_src(page, "#edited img", src)
                page.wait_for_function(
                    "() => document.querySelector('#edit-log').innerText.includes('removed')", timeout=TIMEOUT_MS
                )
                removed = picture_64(image_bytes(page, "#edited img"))

                page.get_by_role("tab", name="Export").click()
                page.locator("#export-gif").click()
                page.wait_for_selector("#export-file a", timeout=TIMEOUT_MS)
                gif = Image.open(
                    io.BytesIO(page.request.get(page.locator("#export-file a").first.get_attribute("href")).body())
                )
            finally:
                browser.close()
    finally:
        demo.close()
    assert first == "1"  # masked-scenes' tokens are all regions: the first is selected
    K = scene.num_objects
    truth = edited_scene(seed, moves={K: (dx, dy)})
    vacated = inner((scene.labels == K) & (truth.labels != K))
    assert (dx, dy) != (0, 0) and vacated.sum() >= 20
    expected = truth.image[vacated].astype(float) / 255
    error, grey = np.abs(shown[vacated] - expected).mean(), np.abs(0.5 - expected).mean()
    assert error < 0.08 and error < grey / 3, (error, grey)  # the background goes on; flat grey would be `grey` off
    gone = inner((scene.labels == K) | (truth.labels == K))  # neither where it was nor where it went
    expected = edited_scene(seed, removed=(K,)).image[gone].astype(float) / 255
    assert np.abs(removed[gone] - expected).mean() < 0.08
    assert gif.n_frames == 8 + 1  # the progression, then the edited image


def picture_64(png: bytes) -> np.ndarray:
    """A view of a 64 px scene (shown enlarged) back at 64 x 64, float in [0, 1]."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB").resize((64, 64), Image.BOX), float) / 255


def inner(region: np.ndarray) -> np.ndarray:
    """The pixels of `region` whose right and lower neighbours are in it too: off its edge."""
    return region & np.pad(region, 1)[2:, 1:-1] & np.pad(region, 1)[1:-1, 2:]


def need_browser():
    """playwright's sync API, or a skip (a failure in CI) where the browser or playwright is missing."""
    required = os.environ.get("VLE_REQUIRE_BROWSER") == "1"
    if not Path(CHROMIUM).exists():
        (pytest.fail if required else pytest.skip)(f"no browser at {CHROMIUM}")
    try:
        import playwright.sync_api as sync_api
    except ImportError:
        (pytest.fail if required else pytest.skip)("playwright is not installed")
    return sync_api


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app on the tiny checkpoints (default vanilla-tiny) and a browser; `calls` lists the image
    of every encode the page asked for."""
    sync_api = need_browser()
    from app_helpers import make_checkpoints

    from explorer import settings, tokens_tab

    folder = tmp_path_factory.mktemp("site")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(folder / "gradio"))
    patch.setattr(settings, "DEFAULT_CHECKPOINT", "vanilla-tiny")
    calls, encode = [], tokens_tab.on_encode
    patch.setattr(
        tokens_tab, "on_encode", lambda image, *args, **kwargs: calls.append(image) or encode(image, *args, **kwargs)
    )
    make_checkpoints(folder / "checkpoints")
    demo, url = serve(folder / "checkpoints", folder / "cache")
    try:
        with sync_api.sync_playwright() as p:
            browser = open_browser(p)
            yield SimpleNamespace(url=url, folder=folder, calls=calls, browser=browser)
            browser.close()
    finally:
        demo.close()
        patch.undo()


def open_page(site, width: int = 1400, height: int = 1000):
    page = site.browser.new_page(viewport={"width": width, "height": height})
    goto_first_result(page, site.url)
    return page


def wait_for_text(page, selector: str, text: str):
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel)?.innerText.includes(text)",
        arg=[selector, text],
        timeout=TIMEOUT_MS,
    )


def upload(page, selector: str, path) -> None:
    page.locator(f"{selector} input[type=file]").set_input_files(str(path))


def error_badges(page) -> int:
    """Gradio's "Error" badges on components whose event failed, and error toasts."""
    return page.locator(".toast-body").count() + page.get_by_text("Error", exact=True).count()


def toast(page) -> str:
    """The text of the warning toasts on screen."""
    return " ".join(page.locator(".toast-body").all_inner_texts())


def wait_for_toast(page, text: str):
    page.wait_for_function(
        "text => [...document.querySelectorAll('.toast-body')].some(t => t.innerText.includes(text))",
        arg=text,
        timeout=TIMEOUT_MS,
    )


def red_badges(page) -> int:
    """Gradio's "Error" badges on components whose event failed (not a toast's title)."""
    return page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => !e.children.length && e.textContent.trim() === 'Error' && !e.closest('[class*=toast]')).length"
    )


def test_every_bad_input_is_a_message_where_the_user_looks_and_keeps_the_session(site, capfd):
    """Each refused input, through the real page: a toast and a message above the views, no failed
    event, and the session before it still on screen and working."""
    from app_helpers import save_png
    from conftest import synthetic_image
    from test_app_images import _png_header_only

    page = open_page(site)
    upload(page, "#image", save_png(site.folder, "good.png", synthetic_image(64, 64, seed=1)))
    wait_for_text(page, "#info", "64×64 px")
    page.wait_for_function("() => document.querySelector('#strip img')", timeout=TIMEOUT_MS)
    kept = page.locator("#recon img").get_attribute("src")
    page.get_by_role("tab", name="Export").click()
    page.locator("#export-tokens").click()
    page.wait_for_selector("#export-file a", timeout=TIMEOUT_MS)
    exported = site.folder / "vanilla.safetensors"
    exported.write_bytes(page.request.get(page.locator("#export-file a").first.get_attribute("href")).body())
    page.get_by_role("tab", name="Tokens").click()

    (site.folder / "text.png").write_bytes(b"this is a text file, renamed\n" * 40)
    (site.folder / "huge.png").write_bytes(_png_header_only(9000, 8000))  # 72 MP claimed, a few bytes read
    tiny = save_png(site.folder, "tiny.png", synthetic_image(64, 64)[:1, :1])
    cases = [
        ("#image", site.folder / "text.png", "not a readable image"),
        ("#image", site.folder / "huge.png", "the limit is 40 MP"),
        ("#image", tiny, "at least 8 px on each side"),
    ]
    for selector, path, message in cases:
        upload(page, selector, path)
        wait_for_toast(page, message)
        wait_for_text(page, "#caption", message)  # above the views, where the results are
        assert "Still showing the previous image" in page.locator("#caption").inner_text()
        # the session is kept
        assert page.locator("#recon img").get_attribute("src") == kept and page.locator("#strip img").count() == 1
        # the Image panel shows the kept image again
        page.wait_for_function("() => document.querySelector('#image img')", timeout=TIMEOUT_MS)
        assert red_badges(page) == 0
        page.locator(".toast-body").first.click()  # dismiss, so the next case's toast is its own
    page.locator("#checkpoint input").fill("masked-tiny")  # tokens made by vanilla-tiny, loaded for another checkpoint
    page.keyboard.press("Enter")
    kept = wait_for_new_src(page, "#recon img", kept)
    page.wait_for_timeout(1000)  # the strip and Edit tab follow
    page.get_by_role("tab", name="Export").click()
    upload(page, "#tokens-file", exported)
    wait_for_toast(page, "made by checkpoint vanilla-tiny")
    page.get_by_role("tab", name="Tokens").click()
    wait_for_text(page, "#caption", "made by checkpoint vanilla-tiny")
    assert page.locator("#recon img").get_attribute("src") == kept and red_badges(page) == 0
    slider = page.locator("#tokens input[type=range]")
    slider.focus()
    page.keyboard.press("Home")
    wait_for_text(page, "#caption", "First 1 of")  # the kept session still answers
    log = capfd.readouterr().err
    assert "Traceback" not in log and "DecompressionBombWarning" not in log


def test_an_upload_past_the_size_limit_is_refused_at_once(site):
    from explorer import settings

    page = open_page(site)
    big = site.folder / "big.png"
    limit = int(settings.MAX_FILE_SIZE.removesuffix("mb")) * 2**20
    with open(big, "wb") as f:
        f.write(_png_signature())
        f.truncate(limit + 2**20)  # just past the limit, mostly zeros
    before = len(site.calls)
    upload(page, "#image", big)
    wait_for_toast(page, "exceed the maximum allowed size")  # gradio refuses it in the page, before any upload
    page.wait_for_timeout(1000)
    assert len(site.calls) == before  # never read, never encoded
    assert page.locator("#recon img").count() == 1 and red_badges(page) == 0


def _png_signature() -> bytes:
    return bytes([137, 80, 78, 71, 13, 10, 26, 10])


def test_each_upload_and_example_encodes_once(site):
    from app_helpers import save_png
    from conftest import synthetic_image

    page = open_page(site)
    before, strip = len(site.calls), None

    def encoded():
        """Wait for the strip (drawn after each encode), then long enough for a second encode to start."""
        nonlocal strip
        strip = wait_for_new_src(page, "#strip img", strip)
        page.wait_for_timeout(1500)

    for seed in (2, 3):  # the second replaces the first: gradio fires `change` twice then
        upload(page, "#image", save_png(site.folder, f"once-{seed}.png", synthetic_image(64, 64, seed=seed)))
        encoded()
        assert "encoded in" in page.locator("#info").inner_text()  # never seen: not "from the cache"
    page.locator("img[src$='scene-2000001.png']").first.click()
    encoded()
    assert len(site.calls) - before == 3, site.calls[before:]


def test_loaded_tokens_show_their_decode_and_compare_says_why_it_cannot_run(site):
    from app_helpers import save_png
    from conftest import synthetic_image
    from PIL import Image

    page = open_page(site)
    upload(page, "#image", save_png(site.folder, "source.png", synthetic_image(64, 96, seed=4)))
    page.wait_for_selector("#strip img", timeout=TIMEOUT_MS)
    source_src = page.locator("#image img").get_attribute("src")
    page.get_by_role("tab", name="Export").click()
    page.locator("#export-tokens").click()
    page.wait_for_selector("#export-file a", timeout=TIMEOUT_MS)
    saved = site.folder / "saved.safetensors"
    saved.write_bytes(page.request.get(page.locator("#export-file a").first.get_attribute("href")).body())
    upload(page, "#tokens-file", saved)
    wait_for_text(page, "#info", "tokens loaded")
    shown = wait_for_new_src(page, "#image img", source_src)
    decoded = np.asarray(Image.open(io.BytesIO(page.request.get(shown).body())))
    assert decoded.shape[:2] == (64, 96)
    assert "PSNR" not in page.locator("#caption").inner_text()  # nothing to measure against
    page.get_by_role("tab", name="Compare").click()
    wait_for_text(page, "#compare-text", "needs a source image")
    page.locator("#compare").click()
    page.wait_for_timeout(500)  # a failed event would badge the panels now
    assert error_badges(page) == 0 and page.locator("#recon-a img").count() == 0


def test_first_screen_defaults_and_labels(site):
    from app_helpers import save_png
    from conftest import synthetic_image

    page = open_page(site)
    # trained with 4
    page.wait_for_function(
        "() => document.querySelector('#n-tokens input[type=range]')?.value === '4'", timeout=TIMEOUT_MS
    )
    upload(page, "#image", save_png(site.folder, "labels.png", synthetic_image(64, 64, seed=5)))
    page.wait_for_selector("#strip img", timeout=TIMEOUT_MS)
    assert "past the" not in page.locator("#caption").inner_text()
    cut = page.evaluate(
        "() => [...document.querySelectorAll('#mask label, #recon label, #alone label')]"
        ".filter(l => l.scrollWidth > l.clientWidth + 1).length"
    )
    assert cut == 0  # no label is cut short
    # nothing covers the strip's first columns
    assert page.locator("#strip label[data-testid=block-label]:visible").count() == 0
    page.locator("#card button, #card .label-wrap").first.click()
    wait_for_text(page, "#card", "Trained with up to 4 tokens")
    card, image = page.locator("#card").bounding_box(), page.locator("#image").bounding_box()
    assert card["width"] > 3 * image["width"]  # the card is as wide as the page, not the left column
    page.get_by_role("tab", name="Edit").click()
    page.locator("#edited img").wait_for(state="visible", timeout=TIMEOUT_MS)
    # vanilla tokens all code the whole image: none selected
    assert page.locator("#edit-token input[type=number]").input_value() == "0"
    click_picture(page, "#edited img", 0.5, 0.5)
    # a click asks for a token instead of moving token 1
    wait_for_text(page, ".toast-body", "Select a token to move first")


def test_until_psnr_gives_each_image_its_own_length_in_the_page(site):
    import re

    from app_helpers import save_png
    from conftest import synthetic_image

    page = open_page(site)
    upload(page, "#image", save_png(site.folder, "length.png", synthetic_image(64, 64, seed=6)))
    page.wait_for_selector("#strip img", timeout=TIMEOUT_MS)
    strip = page.locator("#strip img").get_attribute("src")
    page.locator("#length").get_by_text("Until PSNR").click()
    wait_for_text(page, "#info", "PSNR 33 dB")
    target = page.locator("#target-psnr input")
    target.fill("12")
    target.press("Enter")
    wait_for_text(page, "#info", "PSNR 12 dB")
    wait_for_new_src(page, "#strip img", strip)
    info = page.locator("#info").inner_text()
    found = re.search(r"(\d+) tokens? to reach PSNR 12 dB|not reached in (\d+) tokens", info)
    assert found, info
    n = int(found.group(1) or found.group(2))
    # the slider steps through this image's tokens
    assert page.locator("#tokens input[type=range]").get_attribute("max") == str(n)
    assert page.locator("#n-tokens input[type=range]").is_disabled()  # N does not apply in this mode
    page.get_by_role("tab", name="Quality").click()
    wait_for_text(page, "#quality", "PSNR 12 dB")
    assert error_badges(page) == 0


def test_a_phone_sees_the_results_right_after_the_image_and_every_tab(site):
    page = open_page(site, width=390, height=844)
    image, results = page.locator("#image").bounding_box(), page.locator("#results").bounding_box()
    info = page.locator("#info").bounding_box()
    # not after examples and settings
    assert image["y"] + image["height"] <= info["y"] < results["y"] < image["y"] + image["height"] + 200
    # the examples come after the results
    assert page.locator("#left .gallery, #left table").first.bounding_box()["y"] > results["y"]
    tabs = page.get_by_role("tab")
    assert [t for t in tabs.all_inner_texts()] == ["Tokens", "Quality", "Edit", "Export", "Compare"]
    assert all(tabs.nth(i).is_visible() for i in range(tabs.count()))  # none hidden behind a menu
    cut = page.evaluate(
        "() => [...document.querySelectorAll('#results label, #left label')]"
        ".filter(l => l.offsetParent && l.scrollWidth > l.clientWidth + 1).length"
    )
    assert cut == 0
    page.locator("#strip").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('#strip img')?.naturalWidth > 0", timeout=TIMEOUT_MS)
    width, natural, box, scrolls = page.evaluate(
        """() => { const img = document.querySelector('#strip img');
                   const box = img.closest('.image-container, .image-frame') || img.parentElement;
                   return [img.getBoundingClientRect().width, img.naturalWidth, box.clientWidth,
                           box.scrollWidth > box.clientWidth]; }"""
    )
    assert abs(width - natural) <= 1  # the strip at its full size, readable
    assert scrolls == (natural > box)  # and scrolled sideways where it is wider than the phone
    shot = site.folder / "phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare").wait_for(state="visible", timeout=TIMEOUT_MS)


DOCS = Path(__file__).resolve().parents[1] / "docs"


def show_example(page, url: str, example: str, k: int, checkpoint: str | None = None) -> None:
    """Open the app, click an example as a visitor would, and step the slider from N down to k.
    With `checkpoint`, wait until the page load has put it in the menu: an example clicked before
    then is encoded with the menu's previous value."""
    first = goto_first_result(page, url)
    if checkpoint:
        page.wait_for_function(
            "name => document.querySelector('#checkpoint input')?.value.startsWith(name)",
            arg=checkpoint,
            timeout=TIMEOUT_MS,
        )
    page.locator(f"img[src$='{example}']").first.click()
    src = wait_for_new_src(page, "#recon img", first)
    page.wait_for_selector("#strip img", timeout=TIMEOUT_MS)
    page.wait_for_timeout(1500)
    slider = page.locator("#tokens input[type=range]")
    n = int(slider.get_attribute("max"))
    if k < n:
        slider.focus()
        for _ in range(n - k):
            page.keyboard.press("ArrowLeft")
        wait_for_new_src(page, "#recon img", src)
    page.wait_for_timeout(1500)


def screenshots(checkpoints: Path, out: Path = DOCS):
    """docs/explorer.png (Tokens tab), quality.png, edit.png, compare.png, masks.png and
    masks-photo.png. Object edits are drawn by the library: `python -m vle_core.edit_suites`."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from explorer import models, settings

    cache = Path(tempfile.mkdtemp(prefix="vle-screens-"))
    demo, url = serve(checkpoints, cache)
    out.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = open_browser(p)
            page = browser.new_page(viewport={"width": 1440, "height": 1100}, device_scale_factor=1)
            show_example(page, url, "kodak-hats.png", 4)
            page.screenshot(path=out / "explorer.png", full_page=True)

            page.get_by_role("tab", name="Quality").click()
            page.wait_for_selector("#curve .js-plotly-plot", timeout=TIMEOUT_MS)
            page.wait_for_timeout(1000)
            page.screenshot(path=out / "quality.png", full_page=True)

            page.get_by_role("tab", name="Edit").click()
            edited = page.locator("#edited img")
            edited.wait_for(state="visible", timeout=TIMEOUT_MS)
            page.locator("#edit-token input[type=number]").fill("2")
            page.locator("#edit-token input[type=number]").press("Enter")
            page.wait_for_timeout(1500)
            src = edited.get_attribute("src")
            click_picture(page, "#edited img", 0.75, 0.3)
            wait_for_new_src(page, "#edited img", src)
            page.wait_for_timeout(1500)
            page.screenshot(path=out / "edit.png", full_page=True)

            if len(models.checkpoint_names()) > 1:
                page.get_by_role("tab", name="Compare").click()
                page.locator("#compare").click()
                page.wait_for_selector("#compare-plot .js-plotly-plot", timeout=TIMEOUT_MS)
                page.wait_for_timeout(1500)
                page.screenshot(path=out / "compare.png", full_page=True)
            # Masked VLEs: one on a generated scene (docs/masks.png), one on a photo (docs/masks-photo.png).
            for name, example, k, picture in (
                ("masked-scenes", "scene-2000012.png", 4, "masks.png"),
                ("masked-natural", "kodak-parrots.png", 8, "masks-photo.png"),
            ):
                if name in models.checkpoint_names():
                    settings.DEFAULT_CHECKPOINT = name  # new pages open on it
                    page = browser.new_page(viewport={"width": 1440, "height": 1100}, device_scale_factor=1)
                    show_example(page, url, example, k, checkpoint=name)
                    page.screenshot(path=out / picture, full_page=True)
            browser.close()
    finally:
        demo.close()
    print("screenshots in", out)


if __name__ == "__main__":
    sys.path.insert(0, str(DOCS.parent))  # the repository, for app and vle_core
    screenshots(Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("VLE_CHECKPOINTS", "checkpoints")))
