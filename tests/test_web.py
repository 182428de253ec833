"""The web page, end to end in headless Chromium (Debian's chromium + the playwright package).

Needs: `apt-get install -y chromium` and `pip install playwright` (never `playwright install`:
the browser is the system one, /usr/bin/chromium, or $CLIPSEG_CHROMIUM). Skipped with the
reason when either is missing. Set CLIPSEG_WEB_SCREENSHOT=path.png to keep a screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("fastapi", reason="the server extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the server extra (uvicorn) is not installed")

CHROMIUM = os.environ.get("CLIPSEG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install playwright; "
                                                       "the browser itself comes from apt: chromium)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium, "
                                                           "or set CLIPSEG_CHROMIUM)"),
]




def _scene(path: Path, w: int = 240, h: int = 160) -> Path:
    rng = np.random.default_rng(7)
    bg = (rng.random((h, w, 3)) * 40 + np.array([170, 200, 230])).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    d = ImageDraw.Draw(img)
    d.ellipse([20, 30, 100, 110], fill=(220, 40, 40))
    d.rectangle([130, 50, 210, 130], fill=(40, 90, 220))
    d.polygon([(110, 20), (140, 5), (160, 40)], fill=(250, 210, 30))
    img.save(path)
    return path


@pytest.fixture(scope="module")
def server():
    from clipseg import load as load_model
    from clipseg.server import ServerSettings, create_app, serve_in_thread

    app = create_app(load_model("tiny:random"), ServerSettings(cache_size=8))
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _open_page(browser, url: str):
    """A page on the server's web page that records script errors, and the list of them."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    return page, errors


def test_upload_prompts_heatmaps_visual_prompt_and_download(server, browser, tmp_path):
    url, app = server
    image = _scene(tmp_path / "scene.png")
    page, errors = _open_page(browser, url)
    assert page.title() == "CLIPSeg"
    page.wait_for_function("document.getElementById('model-info').textContent.includes('tiny:random')")

    # 1. upload + two text prompts -> two heatmap cards
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#image-preview:not([hidden])")
    page.fill("#prompts", "a red circle\na blue square")
    page.click("#segment-btn")
    page.wait_for_selector("#results .result >> nth=1")
    page.wait_for_function("document.getElementById('status').textContent.includes('prompt(s)')")
    cards = page.locator("#results .result")
    assert cards.count() == 2
    assert cards.nth(0).locator(".prompt").inner_text() == "a red circle"
    assert cards.nth(1).locator(".prompt").inner_text() == "a blue square"
    size = page.evaluate("(() => { const c = document.querySelector('#results .result canvas');"
                         " return [c.width, c.height]; })()")
    assert size == [240, 160]
    # the canvas shows the image with a heatmap painted over it (not blank, not the bare image)
    painted = page.evaluate("""(() => {
        const c = document.querySelector('#results .result canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
        return s / (d.length / 4); })()""")
    assert 20 < painted < 740
    assert "computed" in page.inner_text("#status")

    # 2. more prompts for the same image: sent by sha256, the backbone does not run again
    runs = app.state.service.metrics.get("clipseg_backbone_runs_total")
    page.fill("#prompts", "a red circle\na blue square\na yellow triangle")
    page.click("#segment-btn")
    page.wait_for_function("document.querySelectorAll('#results .result').length === 3")
    page.wait_for_function("document.getElementById('status').textContent.includes('from the cache')")
    assert app.state.service.metrics.get("clipseg_backbone_runs_total") == runs

    # 3. visual prompt: use the image as the example, draw on it
    page.click("#support-use-image")
    page.wait_for_selector("#support-area:not([hidden])")
    box = page.locator("#support-draw").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 60)
    page.mouse.down()
    for dx, dy in [(20, 0), (40, 10), (50, 30), (30, 40), (10, 30)]:
        page.mouse.move(box["x"] + 40 + dx, box["y"] + 60 + dy, steps=3)
    page.mouse.up()
    assert page.is_checked("#use-visual")
    page.fill("#prompts", "a red circle")
    page.click("#segment-btn")
    page.wait_for_function("document.querySelectorAll('#results .result').length === 2 && "
                           "document.querySelectorAll('#results .result .prompt')[1].textContent === '<visual prompt>'")

    # 4. download a mask: a PNG of the image's size
    with page.expect_download() as dl:
        cards.nth(0).locator("a.download-mask").click()
    saved = tmp_path / "mask.png"
    dl.value.save_as(saved)
    from clipseg.inference.naming import prompt_key

    key = prompt_key("a red circle", "text:a red circle")  # the CLI's FILE.KEY.kind.ext names
    assert dl.value.suggested_filename == f"scene.png.{key}.mask.png"
    mask = Image.open(saved)
    assert mask.size == (240, 160) and set(np.unique(np.asarray(mask))) <= {0, 255}

    # 4b. a text weight mixes the visual prompt into the text prompt: one card, named after both
    page.fill("#text-weight", "0.5")
    page.click("#segment-btn")
    page.wait_for_function("document.querySelectorAll('#results .result').length === 1")
    assert cards.nth(0).locator(".prompt").inner_text() == "a red circle + <visual prompt> (w=0.5)"
    download = cards.nth(0).locator("a.download-mask").get_attribute("download")
    # the CLI's name for the same mixed prompt: TEXT+visual, readable part and a hash of what it is made of
    assert re.fullmatch(r"scene\.png\.a_red_circle_visual-[0-9a-f]{12}\.mask\.png", download), download
    page.fill("#text-weight", "")

    shot = os.environ.get("CLIPSEG_WEB_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)

    # 5. a bad upload shows the server's reason and the page keeps working
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    page.set_input_files("#image-input", str(bad))
    page.click("#segment-btn")
    page.wait_for_selector("#error:not([hidden])")
    assert "bad_image" in page.inner_text("#error")
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#image-preview:not([hidden])")
    page.click("#segment-btn")
    page.wait_for_selector("#error", state="hidden")
    page.wait_for_function("document.getElementById('status').textContent.includes('prompt(s)')")
    assert errors == []
    page.close()


def _segmented(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#results .result').length === {n} && "
                           "document.getElementById('status').textContent.includes('prompt(s)')")


def test_no_duplicate_cards_keyboard_label_map_and_errors(server, browser, tmp_path):
    url, _ = server
    image = _scene(tmp_path / "scene.png")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#image-preview:not([hidden])")
    page.fill("#prompts", "a\nb\nc\nd\ne")
    page.focus("#prompts")
    page.keyboard.press("Control+Enter")  # keyboard: Ctrl+Enter segments
    _segmented(page, 5)

    # regression: arrow keys on the opacity slider and a double click used to stack renders (10 cards)
    page.focus("#opacity")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.click("#segment-btn")
    page.click("#segment-btn")
    page.wait_for_timeout(300)
    _segmented(page, 5)
    assert page.locator("#results .result").count() == 5
    assert page.locator("#download-rle").count() == 1
    assert page.is_hidden("#busy") and page.is_hidden("#cancel-btn")  # the spinner goes with the request

    # the label map's legend: one entry per prompt, in the colours of the cards' swatches
    assert not page.is_hidden("#combined")
    legend = page.eval_on_selector_all("#legend .swatch", "els => els.map(e => e.style.background)")
    cards = page.eval_on_selector_all("#results .result .swatch", "els => els.map(e => e.style.background)")
    assert legend == cards and len(set(legend)) == 5
    # result images are in the accessibility tree
    labels = page.eval_on_selector_all("#results canvas[role=img]", "els => els.map(e => e.getAttribute('aria-label'))")
    assert len(labels) == 5 and all(lbl.startswith('map of "') for lbl in labels)

    # an unreachable server: a plain message, and the old results are gone
    page.route("**/segment", lambda route: route.abort())
    page.click("#segment-btn")
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot reach the server" in page.inner_text("#error")
    assert page.locator("#results .result").count() == 0
    page.unroute("**/segment")
    page.click("#segment-btn")
    _segmented(page, 5)
    assert page.is_hidden("#error")
    assert errors == []
    page.close()


def test_examples_drop_and_brush_undo(server, browser, tmp_path):
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/")
    page.wait_for_selector("#examples button.example")
    page.click("#examples button.example >> nth=0")
    page.wait_for_selector("#image-preview:not([hidden])")
    assert page.input_value("#prompts").strip()  # the example's prompts
    page.click("#segment-btn")
    page.wait_for_function("document.getElementById('status').textContent.includes('prompt(s)')")

    # drop a file on the image box
    data = _scene(tmp_path / "dropped.png").read_bytes()
    page.evaluate("""(bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], "dropped.png", { type: "image/png" }));
        document.getElementById("image-box").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
    }""", list(data))
    page.wait_for_function("document.getElementById('image-meta').textContent.startsWith('dropped.png')")

    # the brush: paint with the keyboard, erase, undo
    page.click("#support-use-image")
    page.wait_for_selector("#support-area:not([hidden])")
    page.focus("#support-draw")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    assert page.is_checked("#use-visual")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert not page.is_checked("#use-visual")  # everything undone
    page.keyboard.press("ArrowDown")
    assert page.is_checked("#use-visual")
    page.close()


def test_docs_work_offline_and_favicon(server, browser):
    url, _ = server
    page = browser.new_page()
    outside: list[str] = []

    def block(route):
        if not route.request.url.startswith(url):
            outside.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", block)
    page.goto(url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=15000)
    assert "/segment" in page.inner_text(".swagger-ui")
    assert outside == []
    assert page.request.get(url + "/favicon.ico").status == 200
    info = page.request.get(url + "/info").json()
    assert not str(info["model"]["source"]).startswith("/")
    page.close()


def test_mask_editing_controls_expressions_and_cutout(server, browser, tmp_path):
    """The editing controls reach POST /segment's fields; the cut-out shows over a checkerboard
    and downloads under the CLI's name; an unbalanced expression is one plain error line."""
    url, _ = server
    image = _scene(tmp_path / "scene.png")
    page, errors = _open_page(browser, url)
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#image-preview:not([hidden])")
    page.fill("#prompts", "a red circle | a blue square")
    page.fill("#negative", "a yellow triangle")
    page.fill("#grow", "6")
    page.fill("#feather", "4")
    page.check("#invert")
    page.check("#want-cutout")
    page.click("#segment-btn")
    _segmented(page, 1)
    answer = page.evaluate("state.view.answer")  # what the server answered: the fields arrived
    assert answer["editing"] == {"grow": 6.0, "feather": 4.0, "invert": True}
    assert answer["negative"] == ["a yellow triangle"]
    card = page.locator("#results .result").nth(0)
    assert card.locator(".prompt").inner_text() == "(a red circle | a blue square) - a yellow triangle"
    assert re.search(r"\d+ regions?", card.locator(".stats").inner_text())
    cut = card.locator("img.cutout")
    cut.wait_for()
    assert "linear-gradient" in cut.evaluate("e => getComputedStyle(e).backgroundImage")  # the checkerboard
    assert cut.evaluate("e => [e.naturalWidth, e.naturalHeight]") == [240, 160]
    with page.expect_download() as dl:
        card.locator("a.download-cutout").click()
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    assert saved.name.startswith("scene.png.") and saved.name.endswith(".cutout.png")
    rgba = np.asarray(Image.open(saved))
    assert rgba.shape == (160, 240, 4)
    # the alpha is the (feathered, inverted) mask the server sent: soft at the feather
    import base64, io

    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["results"][0]["mask_png"]))))
    assert np.array_equal(rgba[..., 3], mask) and ((mask > 0) & (mask < 255)).any()

    # changing a control segments again from the cached features
    page.uncheck("#invert")
    page.wait_for_function("document.querySelector('#results .result img.cutout') !== null")
    page.wait_for_function("document.getElementById('status').textContent.includes('from the cache')")

    # full resolution: edge-aware refinement and tiles reach the service
    page.check("#refine")
    page.wait_for_function("state.view && state.view.answer.refine === true")
    page.select_option("#tiles", "2")
    page.wait_for_function("state.view && state.view.answer.tiles === 2")
    assert page.evaluate("state.view.answer.results.length") == 1

    # an unbalanced expression: the server's one line, no results
    page.fill("#prompts", "(a red circle | a blue square")
    page.click("#segment-btn")
    page.wait_for_selector("#error:not([hidden])")
    assert "bad_prompt: unbalanced '('" in page.inner_text("#error")
    assert errors == []
    page.close()


def test_threshold_rethresholds_in_the_page_without_a_request(server, browser, tmp_path):
    url, _ = server
    image = _scene(tmp_path / "scene.png")
    page, errors = _open_page(browser, url)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/segment") else None)
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#image-preview:not([hidden])")
    assert page.is_disabled("#segment-btn")  # an image but no prompt yet
    page.fill("#prompts", "a red circle")
    assert page.is_enabled("#segment-btn")
    page.fill("#prompts", "  ")
    assert page.is_disabled("#segment-btn")
    page.fill("#prompts", "a red circle")
    page.click("#segment-btn")
    _segmented(page, 1)
    assert len(sent) == 1
    server_stats = page.inner_text("#results .result .stats")

    def pixels():
        return page.evaluate("""(() => { const c = document.querySelector('#results .result canvas');
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 == 0))
              .reduce((a, b) => a + b, 0); })()""")

    before = pixels()
    for t in ("0.02", "0.98"):  # the slider moved (input events as dragging sends them), then let go
        page.eval_on_selector("#threshold", f"e => {{ e.value = '{t}'; e.dispatchEvent(new Event('input')); "
                                            "e.dispatchEvent(new Event('change')); }")
        page.wait_for_timeout(300)
    assert len(sent) == 1  # no request: the page re-thresholded the probabilities it holds
    assert page.inner_text("#threshold-value") == "0.98"
    assert pixels() != before
    page.eval_on_selector("#threshold", "e => { e.value = '0.02'; e.dispatchEvent(new Event('input')); }")
    shown = page.inner_text("#results .result .stats")
    assert shown != server_stats and "≈" in shown and not page.is_hidden("#rethreshold-note")
    shown_fraction = float(re.search(r"≈([0-9.]+)%", shown).group(1)) / 100

    # a download after the move fetches the files at the new threshold: one request, the server's figures
    with page.expect_download() as dl:
        page.locator("#results .result a.download-mask").click()
    assert len(sent) == 2
    page.wait_for_function("document.getElementById('rethreshold-note').hidden")
    saved = tmp_path / "mask.png"
    dl.value.save_as(saved)
    mask = np.asarray(Image.open(saved)) > 127
    assert abs(mask.mean() - shown_fraction) < 0.02  # the page's preview (view pixels, 8-bit) and the server's mask
    assert "≈" not in page.inner_text("#results .result .stats")
    assert errors == []
    page.close()


def test_visual_prompt_canvas_is_usable_for_small_examples(server, browser, tmp_path):
    url, _ = server
    page, errors = _open_page(browser, url)
    small = tmp_path / "small.png"
    Image.new("RGB", (32, 24), (30, 30, 30)).save(small)
    page.set_input_files("#support-input", str(small))
    page.wait_for_selector("#support-area:not([hidden])")
    box = page.locator("#support-draw").bounding_box()
    assert box["width"] >= 250 and abs(box["width"] / box["height"] - 32 / 24) < 0.05
    # paint on the dark example: the stroke is visible (bright magenta, half-transparent)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2, steps=4)
    page.mouse.up()
    painted = page.evaluate("""(() => { const d = document.getElementById('support-draw');
        const p = d.getContext('2d').getImageData(0, 0, d.width, d.height).data;
        let n = 0; for (let i = 0; i < p.length; i += 4) if (p[i] > 200 && p[i + 3] > 200) n++; return n; })()""")
    assert painted > 50
    assert page.is_checked("#use-visual")
    assert errors == []
    page.close()
