"""Formulas have one source and two renderers: Unicode for terminals, MathML for pages."""

from __future__ import annotations

import pytest

from rnnlab.maths import html, plain
from rnnlab.report.data import RunData
from rnnlab.report.story import points

from conftest import need

need("latex2mathml", "pip install 'rnnlab[report]'")  # under CI=1 a failure, not a skip


@pytest.mark.parametrize(
    ("source", "terminal"),
    [
        (r"$0.8^{50} \approx 1.43 \times 10^{-5}$", "0.8^50 ≈ 1.43×10^(−5)"),
        (r"$\prod_{j=k+1}^{T} J_j$", "Π_(j=k+1..T) J_j"),
        (r"$J_j = \operatorname{diag}(\phi'(a_j))\,W$", "J_j = diag(φ′(a_j)) W"),
        (r"$\|\prod J_j\| \le (\gamma\,\sigma_{\max}(W))^{\tau}$", "‖ΠJ_j‖ ≤ (γ σ_max(W))^τ"),
        (r"$c_t = f \odot c_{t-1} + i \odot g$", "c_t = f⊙c_(t−1) + i⊙g"),
        (r"$\frac{\|\partial L_t\|}{\|\partial L_T\|}$", "‖∂L_t‖ / ‖∂L_T‖"),
        ("no formula: a < b", "no formula: a < b"),
    ],
)
def test_the_terminal_renderer(source, terminal):
    assert plain(source) == terminal


def test_the_page_renderer_escapes_prose_and_typesets_formulas():
    page = html(r"if a < b then $\prod_{j=1}^{T} J_j$ & more")
    assert page.startswith("if a &lt; b then <math") and page.endswith("</math> &amp; more")
    assert "<msubsup><mo>&#x0220F;</mo>" in page  # Π with its limits, as mathematics


def test_every_formula_of_the_argument_renders_both_ways():
    for point in points(RunData(id="x", config={}, status="done")):
        for text in (point.title, point.claim):
            terminal = plain(text)
            assert "$" not in terminal and "\\" not in terminal, terminal
            page = html(text)
            assert page.count("<math") == text.count("$") // 2
