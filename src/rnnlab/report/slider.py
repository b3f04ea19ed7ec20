"""The report's one interactive piece: a slider for γ·σ_max(W) that redraws the bound
(γσ)^τ against τ beside a run's measured lag profile, so a learner sees 0.8^50 move.

    slider_html(snapshot, key) -> str  an inline SVG, a range input and a small script

The SVG is drawn here at the run's own γ·σ_max, so the page reads and prints with scripts
off; the script only redraws the dashed bound and its value at τ = 50 as the slider moves.
Nothing is fetched.
"""

from __future__ import annotations

import json
import math
from html import escape

import numpy as np

from rnnlab.diagnostics.record import Snapshot, gamma_sigma, top_profile

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 560, 260, 48, 12, 12, 28
LOW = -20  # log10 of the lowest ratio drawn: the axes stop here, as the figures' do

SCRIPT = """
document.querySelectorAll('.rnnlab-slider:not([data-bound])').forEach(function (box) {
  box.dataset.bound = '1';
  var d = JSON.parse(box.dataset.axes), input = box.querySelector('input');
  var path = box.querySelector('path.bound'), out = box.querySelector('output');
  function y(v) { v = Math.max(d.low, Math.min(d.high, v));
    return d.top + (d.high - v) / (d.high - d.low) * d.h; }
  function draw() {
    var g = parseFloat(input.value), pts = [];
    for (var t = 0; t <= d.n; t++) {
      pts.push((d.left + t / d.n * d.w).toFixed(1) + ',' + y(t * Math.log10(g)).toFixed(1));
    }
    path.setAttribute('d', 'M' + pts.join('L'));
    out.textContent = g.toFixed(2) + '^' + d.far + ' = ' + Math.pow(g, d.far).toExponential(2);
  }
  input.addEventListener('input', draw);
  draw();
});
"""


def slider_html(snapshot: Snapshot, key: str) -> str:
    """The slider for one diagnosis of an Elman RNN ("" for gated cells, whose carry no such
    bound limits). `key` makes the element ids unique in the page."""
    g0 = gamma_sigma(snapshot.diagnosis)
    p = top_profile(snapshot.diagnosis)
    if g0 is None or not math.isfinite(g0) or p.size < 2:
        return ""
    n = p.size - 1
    far = min(50, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(np.isfinite(p) & (p > 0), np.log10(p), np.nan)
    high = max(1.0, float(np.nanmax(logs)) + 0.5) if np.isfinite(logs).any() else 1.0
    axes = {
        "left": LEFT, "top": TOP, "w": WIDTH - LEFT - RIGHT, "h": HEIGHT - TOP - BOTTOM,
        "low": LOW, "high": high, "n": n, "far": far,
    }  # fmt: skip

    def x(t: float) -> float:
        return LEFT + t / n * axes["w"]

    def y(v: float) -> float:
        v = min(max(v, LOW), high)
        return TOP + (high - v) / (high - LOW) * axes["h"]

    measured = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in enumerate(logs) if math.isfinite(v))
    g = min(max(g0, 0.5), 1.5)
    bound = "M" + "L".join(f"{x(t):.1f},{y(t * math.log10(g)):.1f}" for t in range(n + 1))
    ticks = "".join(
        f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">1e{v}</text>'
        for v in range(int(high), LOW - 1, -5)
    )
    label = f"slider-{escape(key)}"
    return (
        f'<div class="rnnlab-slider" data-axes="{escape(json.dumps(axes))}">'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="the bound (γσ)^τ '
        f'against the measured lag profile" style="width:100%;max-width:{WIDTH}px">'
        f'<rect x="{LEFT}" y="{TOP}" width="{axes["w"]}" height="{axes["h"]}" fill="none" '
        f'stroke="#ccc"/><g font-size="10" fill="#555">{ticks}'
        f'<text x="{x(far):.1f}" y="{HEIGHT - 8}" text-anchor="middle">τ = {far}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">lag τ</text></g>'
        f'<line x1="{x(far):.1f}" x2="{x(far):.1f}" y1="{TOP}" y2="{TOP + axes["h"]}" '
        f'stroke="#aaa" stroke-dasharray="2,3"/>'
        f'<polyline points="{measured}" fill="none" stroke="#d62728" stroke-width="1.5"/>'
        f'<path class="bound" d="{bound}" fill="none" stroke="#1f77b4" stroke-width="1.5" '
        f'stroke-dasharray="6,4"/></svg>'
        f'<p><label for="{label}">γ·σ_max(W) = </label>'
        f'<input id="{label}" type="range" min="0.5" max="1.5" step="0.01" value="{g:.2f}">'
        f" <output>{g:.2f}^{far} = {_exponential(g**far)}</output></p>"
        f'<p class="muted">How to read it: red, this run\'s measured ‖∂L_T/∂h_(T−τ)‖ / '
        f"‖∂L_T/∂h_T‖ at step {snapshot.step}; dashed blue, the bound (γσ)^τ for the "
        f"γ·σ_max(W) the slider sets. It starts at this run's own, {g0:.3g} (the slider "
        f"stops at 0.5 and 1.5), where the measured curve lies under the bound. Below 1 the "
        f"bound falls geometrically (at 0.80, 0.8^50 ≈ 1.43e−05); above 1 it no longer "
        f"forces anything.</p></div>"
    )


def _exponential(x: float) -> str:
    """x as JavaScript's toExponential(2) writes it (1.43e-5), so the page reads the same
    before and after the script redraws it."""
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent):+d}".replace("e+-", "e-")
