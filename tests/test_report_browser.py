"""Reports in a real browser: headless Chromium (the system's), driven by playwright's sync API.

Two reports, each at 1280 × 800 and at 420 × 900: one like the demo's (its seven kinds of
run, the ρ(W) pair among them, a title and an introduction) and a sweep over cell × T ×
seed. Checked: the page loads with no console error, no exception and no request that
leaves the file; the page is no wider than the viewport; with every <details> opened (as
printing does), every image has loaded and lies within the viewport's width; the summary
table sorts rows that were not in order; formulas, where the page has MathML, are drawn
inside the viewport. Without playwright or Chromium the tests are skipped and say why,
except under CI=1, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from conftest import need

need("matplotlib", "pip install 'rnnlab[report]'")  # under CI=1 a failure, not a skip

from rnnlab.report import Sweep  # noqa: E402
from rnnlab.report.slider import _exponential  # noqa: E402
from test_report import DIVERGING, config, make_store  # noqa: E402

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
VIEWPORTS = {"desktop": (1280, 800), "phone": (420, 900)}


def unavailable(reason: str) -> NoReturn:
    """Skip, saying why; under CI=1 (.ci/run sets it) a missing browser is a failure."""
    if os.environ.get("CI") == "1":
        pytest.fail(f"{reason}; CI=1, where the browser test must run", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]'); it drives Chromium")
    exe = find_chromium()
    if exe is None:
        unavailable("no Chromium found (apt-get install -y chromium); it tests the HTML report")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=exe, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def demo_like() -> list[Any]:
    """The demo's seven models, small: the article's σ_max 0.8, an unclipped run that
    diverges (watched every 5 steps, as the demo watches its own) and its clipped twin."""
    return [
        config(),
        config(model={"init": "orthogonal", "spectral_radius": 0.8}),
        config(
            model=DIVERGING["model"],
            train=DIVERGING["train"] | {"eval_every": 5},
            diagnostics={"every": 5},
        ),
        config(model=DIVERGING["model"], train={"optimizer": "sgd", "lr": 0.5}),
        config(model={"nonlinearity": "relu", "init": "identity"}),
        config(model={"cell": "lstm"}),
        config(model={"cell": "gru"}),
    ]


def sweep() -> list[Any]:
    """cell × T × seed: the loss curves tell all three apart."""
    return [
        config(model={"cell": cell}, task={"T": T}, train={"seed": seed, "steps": 20})
        for cell in ("rnn", "lstm")
        for T in (6, 10)
        for seed in (0, 1)
    ]


INTRO = (
    "A report like the demo's: the article's argument, then the runs.\n\n"
    "A long unbroken line must wrap, not widen the page: " + "∂L_T/∂h_k·" * 30
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    """name -> (the report file, its number of runs)."""
    out = {}
    for name, configs in (("demo", demo_like()), ("sweep", sweep())):
        folder = tmp_path_factory.mktemp(name)
        make_store(folder / "store", configs)
        report = Sweep(folder / "store")
        if name == "demo":
            report.title = "rnnlab demo — vanishing, exploding, and the remedies"
            report.intro = INTRO
        out[name] = (report.save(folder / "report.html"), len(configs))
    return out


class Page:
    """A report opened at a viewport, with what it logged and requested while loading."""

    def __init__(self, browser: Any, path: Path, viewport: tuple[int, int]) -> None:
        width, height = viewport
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.route(re.compile(r"^(https?|wss?|ftp):"), lambda route: route.abort())
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def open_details(self) -> None:
        self.page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        self.page.wait_for_function("Array.from(document.images).every(i => i.complete)")

    def close(self) -> None:
        self.context.close()


@pytest.fixture(params=[(r, v) for r in ("demo", "sweep") for v in VIEWPORTS], ids="-".join)
def opened(request: pytest.FixtureRequest, browser: Any, reports: dict) -> Iterator[Any]:
    name, viewport = request.param
    path, runs = reports[name]
    page = Page(browser, path, VIEWPORTS[viewport])
    yield page, runs, VIEWPORTS[viewport][0]
    page.close()


LAYOUT = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  open: document.querySelectorAll('details[open]').length,
  details: document.querySelectorAll('details').length,
  titles: Array.from(document.querySelectorAll('details > summary'))
    .map(s => s.textContent.split(' — ')[1].split(': ')[0]),
})"""

IMAGES = """() => Array.from(document.images).map(img => {
  const box = img.getBoundingClientRect();
  return {left: box.left, right: box.right, width: box.width, height: box.height,
          natural: img.naturalWidth, complete: img.complete, alt: img.alt.slice(0, 60)};
})"""


def test_report_fits_the_viewport_and_loads_offline(opened: Any) -> None:
    page, runs, width = opened
    layout = page.page.evaluate(LAYOUT)
    assert layout["details"] == runs and layout["open"] == 1  # the first run reads at once
    assert len(set(layout["titles"])) == runs, layout["titles"]  # no two runs share a title
    assert layout["scrollWidth"] <= width, layout  # no sideways scrolling, closed
    page.open_details()
    layout = page.page.evaluate(LAYOUT)
    assert layout["scrollWidth"] <= width, layout  # nor with every run open
    images = page.page.evaluate(IMAGES)
    assert len(images) == 3 + 6 * runs  # the sweep's figures, then six per run
    for image in images:
        assert image["complete"] and image["natural"] > 0, image["alt"]
        assert image["width"] > 0 and image["height"] > 0, image["alt"]
        assert image["left"] >= 0 and image["right"] <= width + 0.5, image
    assert page.errors == []
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests


SORT_COLUMN = """name => {
  const header = Array.from(document.querySelectorAll('#summary th'))
    .find(th => th.textContent === name);
  const index = Array.from(header.parentNode.children).indexOf(header);
  return Array.from(document.querySelectorAll('#summary tbody tr'))
    .map(row => row.cells[index].dataset.v ?? row.cells[index].textContent);
}"""


def numbers(values: list[str]) -> list[float]:
    """The numeric values in order, after checking the unknown ones ("") come last."""
    known = [v for v in values if v != ""]
    assert values == known + [""] * (len(values) - len(known))
    return [float(v) for v in known]


@pytest.mark.parametrize("name", ["demo", "sweep"])
def test_summary_table_sorts_rows_out_of_order(browser: Any, reports: dict, name: str) -> None:
    path, runs = reports[name]
    page = Page(browser, path, VIEWPORTS["desktop"])
    try:
        js = page.page
        assert js.locator("#summary tbody tr").count() == runs
        before = numbers(js.evaluate(SORT_COLUMN, "loss"))
        assert len(set(before)) > 1  # something to sort
        if before == sorted(before):  # already in order: put them out of it first
            js.evaluate("""() => { const body = document.querySelector('#summary tbody');
              Array.from(body.rows).reverse().forEach(row => body.appendChild(row)); }""")
        values = js.evaluate(SORT_COLUMN, "loss")
        assert numbers([v for v in values if v]) != sorted(numbers([v for v in values if v]))
        header = js.locator("#summary th", has_text=re.compile("^loss$"))
        header.click()
        ascending = numbers(js.evaluate(SORT_COLUMN, "loss"))
        assert ascending == sorted(before) and len(ascending) == len(before)
        header.click()  # again: the other way
        values = js.evaluate(SORT_COLUMN, "loss")
        descending = [float(v) for v in values if v]
        assert descending == sorted(before, reverse=True)
        js.locator("#summary th", has_text=re.compile("^model$")).click()
        labels = js.evaluate(SORT_COLUMN, "model")
        assert labels == sorted(labels) and len(set(labels)) > 1
        assert page.errors == []
    finally:
        page.close()


MATHS = """() => Array.from(document.querySelectorAll('math')).map(m => {
  const box = m.getBoundingClientRect();
  return {left: box.left, right: box.right, width: box.width, height: box.height,
          text: m.textContent.slice(0, 40)};
})"""


def test_formulas_are_typeset_within_the_viewport(opened: Any) -> None:
    page, _, width = opened
    page.open_details()
    formulas = page.page.evaluate(MATHS)
    assert formulas, "the page holds no <math> element: its formulas are not typeset"
    for formula in formulas:
        assert formula["width"] > 0 and formula["height"] > 0, formula  # drawn, not raw text
        assert formula["left"] >= 0 and formula["right"] <= width + 0.5, formula


SLIDE = """(value) => {
  const box = document.querySelector('.rnnlab-slider');
  const input = box.querySelector('input'), path = box.querySelector('path.bound');
  const before = [path.getAttribute('d'), box.querySelector('output').textContent];
  input.value = value;
  input.dispatchEvent(new Event('input'));
  return {before: before, after: [path.getAttribute('d'), box.querySelector('output').textContent]};
}"""


def test_the_slider_redraws_the_bound(browser: Any, reports: dict) -> None:
    path, _ = reports["demo"]
    page = Page(browser, path, VIEWPORTS["desktop"])
    try:
        page.open_details()
        far = page.page.evaluate("JSON.parse(document.querySelector('.rnnlab-slider')"
                                 ".dataset.axes).far")  # fmt: skip
        moved = page.page.evaluate(SLIDE, "0.80")
        assert moved["after"][0] != moved["before"][0]  # the dashed bound was redrawn
        assert moved["after"][1] == f"0.80^{far} = {_exponential(0.8**far)}"
        again = page.page.evaluate(SLIDE, "1.20")
        assert again["after"][1] == f"1.20^{far} = {_exponential(1.2**far)}"
        assert again["after"][0] != moved["after"][0]
        assert page.errors == []
    finally:
        page.close()
