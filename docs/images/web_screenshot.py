"""Regenerate docs/images/web-page.png: the web page with the shipped world model on its
example scene, segmented by the example's prompts (needs the server extra, playwright and a
Chromium, e.g. after `make browser`):

    .venv/bin/python docs/images/web_screenshot.py
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

from clipseg import load as load_model
from clipseg.server import ServerSettings, create_app, serve_in_thread

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]
OUT = Path(__file__).with_name("web-page.png")


def main(chromium: str = "/usr/bin/chromium") -> None:
    app = create_app(load_model("world"), ServerSettings(cache_size=8))
    with serve_in_thread(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.wait_for_selector("#examples button.example")
        page.click("#examples button.example >> nth=0")  # the world scene (starred for the world model)
        page.wait_for_selector("#image-preview:not([hidden])")
        page.click("#segment-btn")
        page.wait_for_function("document.getElementById('status').textContent.includes('prompt(s)')")
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT))
        browser.close()
    print(f"screenshot -> {OUT}")


if __name__ == "__main__":
    main()
