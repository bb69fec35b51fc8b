"""End to end: the real server (``python -m brushwork.web``) driven by headless Chromium.

Chromium is Debian's (``.ci/web-setup.sh`` installs it); Playwright only drives
it, it downloads no browser of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from studio_helpers import content_image, png_record, running_server, style_image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A tiny job, long enough for several preview frames (one every 0.05 s) on a busy CPU.
ITERATIONS = 80
WAIT_MS = 240_000

# Records every value the preview's src takes, however fast frames arrive.
WATCH_PREVIEW = """() => {
  window.__previews = [];
  const img = document.getElementById("preview");
  new MutationObserver(() => window.__previews.push(img.getAttribute("src")))
    .observe(img, { attributes: true, attributeFilter: ["src"] });
}"""
TWO_PREVIEWS = """() => new Set(
  window.__previews.filter((src) => src && src.includes("/preview?v="))
).size >= 2"""


def save_screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("BRUSHWORK_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)


def test_studio_end_to_end_in_chromium(tmp_path: Path) -> None:
    photo, painting, junk = tmp_path / "photo.png", tmp_path / "painting.png", tmp_path / "junk.png"
    content_image(96, 72).save(photo)
    style_image(64).save(painting)
    junk.write_bytes(b"GIF89a but not really an image at all")

    with (
        running_server(tmp_path / "data", "--preview-interval", "0.05") as server,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            page.set_default_timeout(60_000)
            script_errors: list[str] = []
            page.on("pageerror", lambda exc: script_errors.append(str(exc)))
            page.goto(server.url + "/")
            page.wait_for_selector("#opt-size")

            # A bad file gets a readable message at its drop zone; the page carries on.
            page.set_input_files("#content-input", str(junk))
            error = page.locator("#content-slot .slot-error:not([hidden])")
            error.wait_for()
            assert "not an image" in error.inner_text()

            page.set_input_files("#content-input", str(photo))
            page.wait_for_selector("#content-slot img")
            page.set_input_files("#style-input-0", str(painting))
            page.wait_for_selector("#style-slots img")
            assert page.locator("#add-style").is_visible()  # room to blend more styles
            page.fill("#opt-size", "64")
            page.fill("#opt-iterations", str(ITERATIONS))
            page.evaluate(WATCH_PREVIEW)
            page.click("#start")

            # The live preview changes at least twice while the job runs.
            page.wait_for_function(TWO_PREVIEWS, timeout=WAIT_MS)
            save_screenshot(page, tmp_path / "studio-running.png")
            page.wait_for_selector("#status[data-status=done]", timeout=WAIT_MS)
            page.wait_for_selector("#download:not([hidden])")
            page.wait_for_selector("#gallery .card")
            time.sleep(0.3)  # let the final frame and the chart settle for the screenshot
            save_screenshot(page, tmp_path / "studio-done.png")

            assert page.inner_text("#stat-iteration") == f"{ITERATIONS} / {ITERATIONS}"
            assert "/api/results/" in (page.get_attribute("#preview", "src") or "")
            assert page.locator("#gallery .card").count() == 1

            with page.expect_download() as download:
                page.click("#download")
            saved = tmp_path / "download.png"
            download.value.save_as(saved)

            # Re-run from the gallery: the form gets the stored settings back.
            page.fill("#opt-iterations", "7")
            page.click("#gallery .card button:has-text('Re-run')")
            page.wait_for_selector("#submit-msg:has-text('Loaded the settings')")
            assert page.input_value("#opt-iterations") == str(ITERATIONS)
            assert page.input_value("#opt-size") == "64"
            assert page.locator("#job-note").is_hidden()  # 96x72 painted at 64 px

            # A result enlarged past twice the photo's size says so under the picture.
            page.fill("#opt-size", "200")
            page.fill("#opt-iterations", "2")
            page.click("#start")
            note = page.locator("#job-note:not([hidden])")
            note.wait_for(timeout=WAIT_MS)
            assert "96x72 px and is enlarged 2.1x to 200 px" in note.inner_text()
            save_screenshot(page, tmp_path / "studio-note.png")
            assert script_errors == []
        finally:
            browser.close()

    record = png_record(saved.read_bytes())
    assert record["config"]["size"] == 64
    assert record["config"]["iterations"] == ITERATIONS
    assert record["iterations_run"] == ITERATIONS
    assert record["inputs"]["content"] == "photo.png"
    assert (tmp_path / "studio-done.png").stat().st_size > 10_000


def test_strength_slider_sets_the_submitted_value(tmp_path: Path) -> None:
    """The log slider and its number box follow each other; the box's value is what is sent."""
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    content_image(64, 48).save(photo)
    style_image(48).save(painting)
    with running_server(tmp_path / "data") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            script_errors: list[str] = []
            page.on("pageerror", lambda exc: script_errors.append(str(exc)))
            page.goto(server.url + "/")
            slider = page.locator("#opt-strength-slider")
            slider.wait_for()
            # 200 steps over 0.1..10 on a log scale: the default 1 sits in the middle.
            assert (page.input_value("#opt-strength"), slider.input_value()) == ("1", "100")

            slider.focus()
            page.keyboard.press("End")
            assert page.input_value("#opt-strength") == "10"
            for _ in range(30):  # 30 of 100 steps per decade down from 10: 10 ** 0.7
                page.keyboard.press("ArrowLeft")
            assert (page.input_value("#opt-strength"), slider.input_value()) == ("5.01", "170")

            # An exact value typed in the box moves the slider; one past its range pins it.
            page.fill("#opt-strength", "0.37")
            assert slider.input_value() == "57"
            page.fill("#opt-strength", "50")
            assert slider.input_value() == "200"
            page.click("#reset")
            assert (page.input_value("#opt-strength"), slider.input_value()) == ("1", "100")

            page.set_input_files("#content-input", str(photo))
            page.wait_for_selector("#content-slot img")
            page.set_input_files("#style-input-0", str(painting))
            page.wait_for_selector("#style-slots img")
            page.fill("#opt-size", "32")
            page.fill("#opt-iterations", "1")
            slider.focus()
            page.keyboard.press("Home")
            page.keyboard.press("ArrowRight")  # one step up from 0.1: 0.1 * 10 ** 0.01
            assert page.input_value("#opt-strength") == "0.102"
            with page.expect_request("**/api/jobs") as posted:
                page.click("#start")
            sent = posted.value.post_data_json["options"]
            assert sent == {"size": 32, "iterations": 1, "strength": 0.102}
            page.wait_for_selector("#submit-msg:has-text('Submitted job')")
            response = posted.value.response()
            assert response is not None and response.status == 201
            status, body = server.request(f"/api/jobs/{response.json()['id']}")
            assert status == 200
            assert json.loads(body)["request"]["options"]["strength"] == 0.102
            assert script_errors == []
        finally:
            browser.close()
