"""The `tbimg` tab in a real browser: headless Chromium from Debian, driven by Playwright, against `tbimg serve`.

`.ci/run` installs both (apt's `chromium`, PyPI's `playwright`; Playwright's own browser download cannot
work on these machines). Without them the tests are skipped locally, and CI fails rather than skip
(`TBIMG_REQUIRE_BROWSER=1`). One server and one browser serve the module; each test opens its own page.

The logdir: runs `a` (every step of 30) and `b` (every third), 8-bit gradients whose level says run and
step; `torch`, written by PyTorch's `SummaryWriter` (TF 1 `Summary.Image`, as tensorboardX writes);
a `depth` tag of 16-bit single-channel images in run `a`; `long`, 3,000 steps.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tbimg_cli import EventWriter, log_images

from .helpers import REPO, Served, free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"]
LEVEL = {"a": 0, "b": 40, "torch": 80}
LONG_STEPS = 3000
VIRIDIS_ENDS = ((68, 1, 84), (253, 231, 37))

pytestmark = pytest.mark.slow


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
    """A 48x64 grey gradient, x + its run's level + 4 x step (clipped at 255)."""
    ramp = np.tile(np.arange(64, dtype=np.int32), (48, 1))
    return np.clip(ramp + LEVEL[run] + step * 4, 0, 255).astype(np.uint8)


def depth(x: int, y: int) -> int:
    return 1000 + 300 * x + 7 * y


def write_logs(logs: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    for run in ("a", "b"):
        for step in range(0, 30, 1 if run == "a" else 3):
            log_images(logs / run, "samples", picture(run, step), step)
    with SummaryWriter(str(logs / "torch")) as writer:
        for step in (0, 10, 20):
            writer.add_image("samples", picture("torch", step)[None], step)  # CHW, as PyTorch users hold it
    ys, xs = np.mgrid[0:32, 0:40]
    log_images(logs / "a", "depth", depth(xs, ys).astype(np.uint16), 0)  # a's step 0 holds two tags
    with EventWriter(logs / "long") as writer:
        for step in range(LONG_STEPS):
            writer.image("many", np.full((8, 8), step % 256, np.uint8), step)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_playwright = _browser_or_skip()
    root = tmp_path_factory.mktemp("viewer")
    write_logs(root / "logs")
    served = Served(["serve", root / "logs", "--port", free_port()], root)
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            chromium.served_url = served.url
            yield chromium
            chromium.close()
    finally:
        served.close()


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport={"width": 1200, "height": 900})
    tab.served_url = browser.served_url
    yield tab
    tab.close()


def frame_of(page, tag: str = "samples"):
    """The tab's iframe, once TensorBoard's page has opened it and `tag` is shown."""
    page.goto(page.served_url + "#tbimg")
    frame = page.frame_locator("iframe")
    frame.locator(".pane canvas").first.wait_for(timeout=60_000)
    if frame.locator(".tag.selected").inner_text() != tag:
        frame.locator(f".tag[data-tag='{tag}']").click()
        frame.locator(".tag.selected", has_text=tag).wait_for()
        frame.locator(".pane canvas").first.wait_for()
    return frame


def go_to_step(frame, step: int) -> None:
    exact = frame.locator(".exact")
    exact.fill(str(step))
    exact.press("Enter")
    frame.locator(f".tbimg[data-shown='{step}']").wait_for()


def hover(page, frame, pane: int, x: int, y: int) -> str:
    """The readout with the cursor on pixel (x, y) of the pane, at the current zoom."""
    target = frame.locator(".pane").nth(pane)
    target.locator("canvas").first.scroll_into_view_if_needed()
    scale = target.locator("canvas").first.evaluate("c => c.getBoundingClientRect().width / c.width")
    box = target.bounding_box()
    page.mouse.move(box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale)
    readout = frame.locator(".readout")
    for _ in range(50):  # the page answers the move in its own time
        if (text := readout.inner_text()).startswith(f"x {x}, y {y}:"):
            return text
        page.wait_for_timeout(40)
    return readout.inner_text()


def canvas_pixel(frame, pane: int, x: int, y: int) -> tuple[int, ...]:
    script = "(c, [x, y]) => [...c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3)]"
    return tuple(frame.locator(".pane").nth(pane).locator("canvas").first.evaluate(script, [x, y]))


def screen_pixel(page, frame, pane: int) -> tuple[int, ...]:
    """The colour a screenshot has at the middle of the pane: what is on screen, not in the DOM."""
    box = frame.locator(".pane").nth(pane).bounding_box()
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    return shot.getpixel((int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)))


def set_range(frame, name: str, value: float) -> None:
    """Move a range input as a hand does: its value, then the input event the page listens to."""
    script = "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }"
    frame.locator(f".{name}").evaluate(script, value)


def save_screenshot(page, name: str) -> None:
    if os.environ.get("TBIMG_SCREENSHOTS"):  # README's pictures, refreshed on demand
        Path(REPO / "docs" / name).write_bytes(page.screenshot())


def test_browse_every_step_of_three_runs_one_written_by_pytorch(page):
    frame = frame_of(page)
    assert frame.locator(".tag").all_inner_texts() == ["depth", "many", "samples"]
    go_to_step(frame, 17)
    panes = frame.locator(".pane")
    assert [panes.nth(k).get_attribute("data-step") for k in range(3)] == ["17", "15", "10"]
    rows = frame.locator(".row")
    assert "step 15 (nearest earlier)" in rows.nth(1).inner_text()  # b has every third step
    assert rows.nth(2).inner_text().startswith("torch")
    assert hover(page, frame, 2, 0, 0).startswith(f"x 0, y 0: ({LEVEL['torch'] + 10 * 4})")  # SummaryWriter's PNG

    frame.locator(".slider").press("ArrowRight")  # the keyboard walks the union of the runs' steps
    frame.locator(".tbimg[data-shown='18']").wait_for()
    assert hover(page, frame, 0, 5, 2).startswith(f"x 5, y 2: ({18 * 4 + 5})")
    before = panes.nth(0).locator("canvas").evaluate("c => c.style.transform")
    frame.locator("body").press("+")
    after = panes.nth(0).locator("canvas").evaluate("c => c.style.transform")
    assert before != after and "scale" in after
    assert hover(page, frame, 0, 9, 4).startswith(f"x 9, y 4: ({18 * 4 + 9})")  # zoomed, the same pixel

    frame.locator(".mode").select_option("diff")
    frame.locator(".pane.compare canvas.difference").wait_for()
    # a at 18 is 72 + x, b at 18 is 112 + x: |a - b| is 40 everywhere
    assert frame.locator(".pane.compare").get_attribute("data-max") == "40"
    assert "max 40" in frame.locator(".readout").inner_text()
    assert canvas_pixel(frame, 0, 3, 3) == (255, 255, 255)  # the largest difference, amplified to white

    frame.locator(".mode").select_option("swipe")
    frame.locator(".pane.compare .divider").wait_for()
    frame.locator("body").press("f")
    box = frame.locator(".pane.compare").bounding_box()
    probe = (int(box["x"] + box["width"] * 0.4), int(box["y"] + box["height"] / 2))
    before = Image.open(io.BytesIO(page.screenshot())).convert("L").getpixel(probe)  # left of the divider: a
    divider = frame.locator(".divider").bounding_box()
    page.mouse.move(divider["x"] + 1, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + 10, steps=4)
    page.mouse.up()
    clip = frame.locator(".pane.compare canvas.b").evaluate("c => c.style.clipPath")
    assert abs(float(clip.split()[-1].rstrip("px)")) - 64 * 0.25) < 1  # b shows right of a quarter of the width
    after = Image.open(io.BytesIO(page.screenshot())).convert("L").getpixel(probe)  # now right of it: b
    assert abs(after - before - 40) <= 2  # the same place on screen, b's 40 levels brighter
    save_screenshot(page, "viewer-swipe.png")


def test_one_run_at_two_steps(page):
    frame = frame_of(page)
    for run in ("b", "torch"):
        frame.locator(f"input[data-run='{run}']").uncheck()
    go_to_step(frame, 18)
    stepb = frame.locator(".stepb")
    stepb.fill("3")
    stepb.press("Enter")
    frame.locator(".row", has_text="(vs step)").wait_for()
    assert [frame.locator(".pane").nth(k).get_attribute("data-step") for k in range(2)] == ["18", "3"]
    frame.locator(".mode").select_option("diff")
    frame.locator(".pane.compare canvas.difference").wait_for()
    assert frame.locator(".pane.compare").get_attribute("data-max") == str((18 - 3) * 4)
    frame.locator(".mode").select_option("blink")
    frame.locator(".pane.compare canvas.b").wait_for()
    visible = "c => getComputedStyle(c).visibility"
    assert frame.locator(".pane.compare canvas.b").evaluate(visible) == "visible"
    frame.locator(".pane.compare").click()  # out of the step box, which keeps its keys
    page.keyboard.press("b")
    assert frame.locator(".pane.compare canvas.b").evaluate(visible) == "hidden"


def test_16_bit_values_window_gamma_and_colour_maps(page):
    frame = frame_of(page, "depth")
    assert frame.locator(".pane").first.get_attribute("data-bits") == "16"
    assert hover(page, frame, 0, 5, 3) == f"x 5, y 3: ({depth(5, 3)}) 16-bit"  # not the 8 bits drawn
    low, high = int(frame.locator(".low").input_value()), int(frame.locator(".high").input_value())
    assert depth(0, 0) <= low < high <= depth(39, 31)  # auto: the image's own percentiles, not 0..65535

    def set_window(low: int, high: int) -> None:
        for name, value in (("low", low), ("high", high)):
            box = frame.locator(f".{name}")
            box.fill(str(value))
            box.press("Enter")

    set_window(0, 4000)
    t = depth(5, 3) / 4000
    assert canvas_pixel(frame, 0, 5, 3) == (round(t * 255),) * 3
    set_range(frame, "gamma", 2)
    assert canvas_pixel(frame, 0, 5, 3) == (round(t**0.5 * 255),) * 3
    set_range(frame, "brightness", 0.1)
    assert canvas_pixel(frame, 0, 5, 3) == (round((t**0.5 + 0.1) * 255),) * 3
    frame.locator("[data-window='reset']").click()

    frame.locator(".cmap").select_option("viridis")
    set_window(60000, 65535)  # every value below the window: the map's first colour
    assert canvas_pixel(frame, 0, 5, 3) == VIRIDIS_ENDS[0]
    assert all(abs(a - b) <= 2 for a, b in zip(screen_pixel(page, frame, 0), VIRIDIS_ENDS[0], strict=True))
    set_window(0, 900)  # every value above it: the last
    assert all(abs(a - b) <= 2 for a, b in zip(screen_pixel(page, frame, 0), VIRIDIS_ENDS[1], strict=True))
    frame.locator("[data-window='auto']").click()
    assert int(frame.locator(".low").input_value()) == low
    save_screenshot(page, "viewer-16bit.png")

    frame.locator("[data-window='reset']").click()
    frame.locator(".tag[data-tag='samples']").click()  # the same run and step, an 8-bit tag: no 16-bit window
    go_to_step(frame, 0)
    frame.locator(".pane[data-bits='8'] canvas").first.wait_for()
    assert frame.locator(".low").input_value() == "" and frame.locator(".high").input_value() == ""
    step = int(frame.locator(".pane").first.get_attribute("data-step"))
    assert canvas_pixel(frame, 0, 5, 0) == (picture("a", step)[0, 5],) * 3  # drawn as stored


def test_a_tag_of_3000_steps_loads_only_what_is_in_view(page):
    fetched: list[str] = []
    page.on("request", lambda request: "/image?" in request.url and fetched.append(request.url))
    frame = frame_of(page, "many")
    strip = frame.locator(".strip")
    frame.locator(".strip .thumb.current").wait_for()
    assert frame.locator(".slider").get_attribute("max") == str(LONG_STEPS - 1)
    in_dom = frame.locator(".strip .thumb").count()
    assert 0 < in_dom < 60
    strip.evaluate("s => { s.scrollLeft = 0; }")
    frame.locator(".strip .thumb[data-step='0']").wait_for()
    assert frame.locator(".strip .thumb").count() < 60
    frame.locator(".strip .thumb[data-step='5']").click()
    frame.locator(".tbimg[data-shown='5']").wait_for()
    assert frame.locator(".exact").input_value() == "5"
    assert hover(page, frame, 0, 1, 1).endswith("(5)")
    assert len(fetched) < 150, f"{len(fetched)} images fetched for a view of a few dozen"


def test_a_copied_url_opens_the_view_as_it_was(page):
    frame = frame_of(page)
    go_to_step(frame, 9)
    stepb = frame.locator(".stepb")
    stepb.fill("3")
    stepb.press("Enter")
    frame.locator(".mode").select_option("blink")
    frame.locator("body").press("+")
    set_range(frame, "contrast", 1.5)
    frame.locator(".cmap").select_option("magma")
    link = frame.locator(".permalink")  # the URL is written at most once a frame: wait for the last change's
    url = wait_until(
        lambda: (href := link.get_attribute("href")) and "cmap=magma" in href and href, 10, what="the link"
    )
    assert url == frame.locator("body").evaluate("() => location.href")
    transform = frame.locator(".pane canvas").first.evaluate("c => c.style.transform")
    assert "plugin_entry.html" in url and "step=9" in url and "mode=blink" in url
    page.goto(url)  # the tab's own page, opened from the copied address
    page.locator(".pane.compare canvas.b").wait_for(timeout=60_000)
    assert page.locator(".exact").input_value() == "9" and page.locator(".stepb").input_value() == "3"
    assert page.locator(".mode").input_value() == "blink" and page.locator(".cmap").input_value() == "magma"
    assert page.locator(".contrast").input_value() == "1.5"
    assert page.locator(".pane canvas").first.evaluate("c => c.style.transform") == transform
