"""The confusion explorer in a real browser (issue 27): headless Chromium, Playwright, `tbimg serve`.

A run `exp` logged by `log_confusion_matrix` at three epochs (a model that improves), each example's
thumbnail a flat grey whose level is its index, and a run `old/cm` with only a matrix picture, as a tbimg
older than the explorer wrote.
"""

from __future__ import annotations

import numpy as np
import pytest

from tbimg_cli import log_confusion_matrix
from tbimg_cli.events.writer import EventWriter

from .helpers import Served, free_port
from .test_explorer import NAMES, evaluation_set
from .test_viewer_browser import CHROMIUM, FLAGS, _browser_or_skip

pytestmark = pytest.mark.slow
EPOCHS = 3


def predictions(epoch: int):
    truth, logits, _ = evaluation_set()
    return truth, logits + 0.5 * epoch * np.eye(4)[truth]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    sync_playwright = _browser_or_skip()
    root = tmp_path_factory.mktemp("explorer")
    truth, _, _ = evaluation_set()
    images = np.repeat(np.arange(len(truth), dtype=np.uint8)[:, None, None], 12, 1).repeat(10, 2)
    for epoch in range(EPOCHS):
        log_confusion_matrix(root / "logs" / "exp", *predictions(epoch), epoch, NAMES, images=images)
    from tbimg_cli.confusion.figures import confusion_matrix_png

    with EventWriter(root / "logs" / "old" / "cm") as writer:
        writer.png_images("Confusion Matrix", [confusion_matrix_png(np.eye(3, dtype=np.int64), list("abc"), "t")], 0)
    server = Served(["serve", root / "logs", "--port", free_port()], root)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.served_url = server.url
            yield page
            browser.close()
    finally:
        server.close()


def explorer(page):
    page.goto(page.served_url + "#tbimg")
    frame = page.frame_locator("iframe")
    frame.locator(".cm-open:visible, .cm-canvas:visible").first.wait_for(timeout=60_000)
    if not frame.locator(".cm-canvas").count():
        frame.locator(".cm-open").click()
    frame.locator(".tbimg.cm[data-shown]").wait_for(timeout=60_000)
    return frame


def click_cell(frame, true: int | None, pred: int | None) -> None:
    canvas = frame.locator(".cm-canvas")
    margin, cell, scale = canvas.evaluate(
        "c => [Number(c.dataset.margin), Number(c.dataset.cell), c.clientWidth / c.width]"
    )
    x = margin / 2 if pred is None else margin + pred * cell + cell / 2
    y = margin / 2 if true is None else margin + true * cell + cell / 2
    canvas.click(position={"x": x * scale, "y": y * scale})
    frame.locator(f".cm-cell[data-shown='{'' if true is None else true},{'' if pred is None else pred}']").wait_for()


def test_click_a_cell_to_see_its_examples_and_switch_normalisation(served):
    frame = explorer(served)
    assert frame.locator(".cm-step").input_value() == str(EPOCHS - 1)  # the last epoch first
    truth, scores = predictions(EPOCHS - 1)
    predicted = scores.argmax(axis=1)
    wrong = [(i, j) for i in range(4) for j in range(4) if i != j and ((truth == i) & (predicted == j)).any()]
    i, j = wrong[0]
    click_cell(frame, i, j)
    expected = np.flatnonzero((truth == i) & (predicted == j))
    shown = [int(x) for x in frame.locator(".cm-cell figure").evaluate_all("fs => fs.map(f => f.dataset.index)")]
    assert sorted(shown) == expected.tolist()
    caption = frame.locator(".cm-cell figcaption").first.inner_text()
    assert f"{NAMES[i]} → {NAMES[j]}" in caption
    thumb = frame.locator(".cm-cell figure img").first
    thumb.evaluate("img => img.complete || new Promise(r => (img.onload = r))")
    level = thumb.evaluate(
        "img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;"
        " c.height = img.naturalHeight; const x = c.getContext('2d'); x.drawImage(img, 0, 0);"
        " return [img.naturalWidth, x.getImageData(3, 3, 1, 1).data[0]]; }"
    )
    first = int(frame.locator(".cm-cell figure").first.get_attribute("data-index"))
    assert level == [10, first % 256]  # the thumbnail is that example's input
    frame.locator(".cm-canvas").hover(position={"x": 200, "y": 200})
    before = frame.locator(".cm-canvas").evaluate("c => c.toDataURL()")
    drawn = frame.locator("body").evaluate("() => window.tbimgCmTimings.length")
    frame.locator(".norm").select_option("counts")
    frame.locator("body").evaluate(
        "(_, n) => new Promise(r => { const t = () => (tbimgCmTimings.length > n ? r() : setTimeout(t, 20)); t(); })",
        drawn,
    )
    assert frame.locator(".cm-canvas").evaluate("c => c.toDataURL()") != before
    click_cell(frame, i, None)  # a row label: every example of one true class
    assert frame.locator(".cm-cell figure").count() == min(300, int((truth == i).sum()))
    frame.locator(".cm-cell figure img").first.click()
    assert frame.locator(".cm-large").is_visible()
    served.keyboard.press("Escape")


def test_compare_two_epochs_shows_what_was_fixed_and_reloads_from_its_link(served):
    frame = explorer(served)
    step = frame.locator(".vs-step")
    step.fill("0")
    step.press("Enter")
    frame.locator(".cm-readout", has_text="difference").wait_for()
    click_cell(frame, 1, 1)
    truth, late = predictions(EPOCHS - 1)
    _, early = predictions(0)
    late_hit = set(np.flatnonzero((truth == 1) & (late.argmax(axis=1) == 1)).tolist())
    early_hit = set(np.flatnonzero((truth == 1) & (early.argmax(axis=1) == 1)).tolist())
    fixed = frame.locator(".cm-cell h4", has_text="moved in").locator(".muted").inner_text()
    assert int(fixed) == len(late_hit - early_hit) > 0
    link = served.evaluate("() => document.querySelector('iframe').contentWindow.location.hash.slice(1)")
    assert "vs_step=0" in link and "cell=1%2C1" in link
    served.goto("about:blank")  # a fresh page, opened at the copied link (the tab's state is in its frame's URL)
    served.goto(served.served_url + "#tbimg")
    inner = served.frame_locator("iframe")
    inner.locator(".cm-open").wait_for(timeout=60_000)
    served.evaluate(
        "link => { const f = document.querySelector('iframe'); f.contentWindow.location.hash = link;"
        " f.contentWindow.location.reload(); }",
        link,
    )
    inner.locator(".cm-cell[data-shown='1,1']").wait_for(timeout=60_000)
    assert inner.locator(".vs-step").input_value() == "0"
    assert inner.locator(".cm-step").input_value() == str(EPOCHS - 1)


def test_a_matrix_from_before_the_explorer_still_shows_its_picture(served):
    frame = explorer(served)
    frame.locator(".picture").click()
    frame.locator(".tbimg.cm[data-shown='picture']").wait_for()
    picture = frame.locator(".cm-picture")
    picture.evaluate("img => img.complete || new Promise(r => (img.onload = r))")
    assert picture.evaluate("img => img.naturalWidth") > 100
    assert "older than the explorer" in frame.locator(".cm-body").inner_text()
