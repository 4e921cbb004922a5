"""The `tbimg` tab in a real browser: headless Chromium from Debian, driven by Playwright, against `tbimg serve`.

`.ci/run` installs both (apt's `chromium`, PyPI's `playwright`; Playwright's own browser download cannot
work on these machines). Without them the tests are skipped locally, and CI fails rather than skip
(`TBIMG_REQUIRE_BROWSER=1`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli import log_images

from .helpers import REPO, free_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"]


def _browser_or_skip():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (pip install playwright)"
    if missing is None and not shutil.which(CHROMIUM):
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("TBIMG_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_playwright


def picture(run: str, step: int) -> np.ndarray:
    """A 48x64 gradient whose level says its run and step: run b is 40 levels brighter than run a."""
    ramp = np.tile(np.arange(64, dtype=np.int32), (48, 1))
    level = step * 4 + (40 if run == "b" else 0)
    return np.clip(ramp + level, 0, 255).astype(np.uint8)


@pytest.fixture
def page(serve, tmp_path):
    sync_playwright = _browser_or_skip()
    for run in ("a", "b"):
        for step in range(0, 30, 1 if run == "a" else 3):
            log_images(tmp_path / "logs" / run, "samples", picture(run, step), step)
    served = serve("serve", tmp_path / "logs", "--port", free_port())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            tab = browser.new_page(viewport={"width": 1100, "height": 700})
            tab.served_url = served.url
            yield tab
        finally:
            browser.close()


def frame_of(page):
    """The tab's iframe, once TensorBoard's page has opened it and the index has listed both runs."""
    page.goto(page.served_url + "#tbimg")
    frame = page.frame_locator("iframe")
    frame.locator(".pane canvas").first.wait_for(timeout=60_000)
    return frame


@pytest.mark.slow
def test_browse_every_step_compare_two_runs_zoom_and_read_pixels(page):
    frame = frame_of(page)
    assert frame.locator(".tag").all_inner_texts() == ["samples"]
    exact = frame.locator(".exact")
    exact.fill("17")
    exact.press("Enter")
    panes = frame.locator(".pane")
    panes.nth(1).locator("canvas").wait_for()
    assert panes.nth(0).get_attribute("data-step") == "17"
    assert panes.nth(1).get_attribute("data-step") == "15"  # b has every third step: its nearest earlier one
    assert "step 15 (nearest earlier)" in frame.locator(".row").nth(1).inner_text()
    frame.locator(".slider").press("ArrowRight")  # the keyboard walks the union of the runs' steps
    frame.locator(".pane[data-step='18']").first.wait_for()

    box = panes.nth(0).bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)  # the top-left pixel of run a at step 18
    readout = frame.locator(".readout")
    assert readout.inner_text().startswith(f"x 0, y 0: ({18 * 4},{18 * 4},{18 * 4})")

    before = panes.nth(0).locator("canvas").evaluate("c => c.style.transform")
    frame.locator("body").press("+")
    after = panes.nth(0).locator("canvas").evaluate("c => c.style.transform")
    assert before != after and "scale" in after

    frame.locator(".mode").select_option("diff")
    frame.locator(".pane.compare canvas.difference").wait_for()
    # a at 18 is 72 + x, b at 18 is 112 + x (clipped at 255): |a - b| is at most 40
    assert frame.locator(".pane.compare").get_attribute("data-max") == "40"
    assert "max 40" in readout.inner_text()

    frame.locator(".mode").select_option("swipe")
    frame.locator(".pane.compare .divider").wait_for()
    clip = frame.locator(".pane.compare canvas.b").evaluate("c => c.style.clipPath")
    assert clip.startswith("inset(")
    shot = page.screenshot()
    assert shot.startswith(b"\x89PNG")
    if os.environ.get("TBIMG_SCREENSHOTS"):  # README's picture, refreshed on demand
        Path(REPO / "docs" / "viewer-swipe.png").write_bytes(shot)


@pytest.mark.slow
def test_a_copied_url_opens_the_view_as_it_was(page):
    frame = frame_of(page)
    exact = frame.locator(".exact")
    exact.fill("9")
    exact.press("Enter")
    frame.locator(".pane[data-step='9']").first.wait_for()
    frame.locator(".mode").select_option("blink")
    url = frame.locator(".permalink").get_attribute("href")
    assert url == frame.locator("body").evaluate("() => location.href")
    assert "plugin_entry.html" in url and "step=9" in url and "mode=blink" in url
    page.goto(url)  # the tab's own page, opened from the copied address
    page.locator(".pane.compare canvas.b").wait_for(timeout=60_000)
    assert page.locator(".exact").input_value() == "9" and page.locator(".mode").input_value() == "blink"
