"""A Diagnosis as HTML, the one place it is worded for a page: the verdict block, and the
fragment a notebook shows for `d` (Diagnosis._repr_html_: summary, verdict, lag profile).
The report's pages (rnnlab.report.html) are built from these pieces and this stylesheet.
Everything is inline (images as data: URIs), so a page or a fragment reads offline.
"""

from __future__ import annotations

import base64
import io
import math
from html import escape
from typing import TYPE_CHECKING, Any

from rnnlab import maths
from rnnlab.diagnostics import figures
from rnnlab.diagnostics.record import Snapshot
from rnnlab.diagnostics.text import finite_g, per_step

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rnnlab.diagnostics.diagnose import Diagnosis

STYLE = """
.rnnlab-report { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1000px;
  margin: 0 auto; padding: 0 12px; }
.rnnlab-report h1 { font-size: 1.5em; } .rnnlab-report h2 { font-size: 1.25em;
  border-bottom: 1px solid #ccc; margin-top: 1.6em; } .rnnlab-report h3 { font-size: 1.05em; }
.rnnlab-report .figures { display: grid; gap: 0.5em 1.2em;
  grid-template-columns: repeat(auto-fill, minmax(min(440px, 100%), 1fr)); }
.rnnlab-report .scroll { overflow-x: auto; max-width: 100%; }
.rnnlab-report li, .rnnlab-report dd, .rnnlab-report p { overflow-wrap: anywhere; }
.rnnlab-report figure { margin: 0.8em 0; } .rnnlab-report figure img { max-width: 100%;
  height: auto; display: block; } .rnnlab-report figcaption { font-size: 0.85em; color: #555; }
.rnnlab-report .verdict { padding: 0.5em 0.8em; border-left: 5px solid #888;
  background: #f6f6f6; } .rnnlab-report .vanishing { border-color: #1f77b4; }
.rnnlab-report .exploding { border-color: #d62728; } .rnnlab-report .healthy {
  border-color: #2ca02c; } .rnnlab-report .stuck { border-color: #ff7f0e; }
.rnnlab-report .label { font-weight: bold; text-transform: uppercase; }
.rnnlab-report dl.story dt { font-weight: bold; margin-top: 0.5em; }
.rnnlab-report dl.story dd { margin-left: 1.2em; } .rnnlab-report .measured { color: #0b4f8a; }
.rnnlab-report table { border-collapse: collapse; font-size: 0.85em; }
.rnnlab-report th, .rnnlab-report td { border: 1px solid #ccc; padding: 2px 6px;
  white-space: nowrap; }
.rnnlab-report td.n { text-align: right; font-variant-numeric: tabular-nums; }
.rnnlab-report table.sortable th { cursor: pointer; background: #eee; }
.rnnlab-report .muted { color: #777; } .rnnlab-report code { font-size: 0.95em; }
.rnnlab-report math { font-size: 1.1em; } .rnnlab-report dt math { font-weight: bold; }
@media print { .rnnlab-report { max-width: none; } .rnnlab-report figure,
  .rnnlab-report .verdict { break-inside: avoid; } .rnnlab-report .screen { display: none; } }
"""


def fragment(body: str, script: str = "") -> str:
    """For a notebook: the styles (scoped to .rnnlab-report), the body and a script."""
    tail = f"<script>{script}</script>" if script else ""
    return f"<div class='rnnlab-report'><style>{STYLE}</style>{body}</div>{tail}"


def figure_uri(fig: Figure, fmt: str = "svg", dpi: int = 80) -> str:
    """The figure as a data: URI (SVG, or PNG at `dpi`)."""
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def figure_html(fig: Figure, caption: str, fmt: str) -> str:
    """The figure inline with its caption (its $formulas$ typeset; plain in the alt text)."""
    return (
        f'<figure><img src="{figure_uri(fig, fmt)}" alt="{escape(maths.plain(caption))}">'
        f"<figcaption>{maths.html(caption)}</figcaption></figure>"
    )


def verdict_html(s: Snapshot, first: Snapshot | None = None) -> str:
    """The verdict in words: label (and the one at initialisation), evidence, remedies."""
    v = s.diagnosis.verdict
    head = f'<span class="label">{escape(v.label)}</span>'
    if first is not None and first is not s:
        was = first.diagnosis.verdict.label
        head += f" at step {s.step} <span class='muted'>({escape(was)} at step {first.step})</span>"
    evidence = "".join(f"<li>{maths.html(e)}</li>" for e in v.evidence)
    remedies = "".join(
        f"<li>{maths.html(r.action)}{' <em>[in use]</em>' if r.in_use else ''}"
        f" — <span class='muted'>{maths.html(r.reason)}</span></li>"
        for r in v.remedies
    )
    clip = v.suggested_clip
    suggested = (
        f"<p>Suggested clipping threshold: {clip:.3g}.</p>"
        if clip is not None and math.isfinite(clip)
        else ""
    )
    return (
        f'<div class="verdict {escape(v.label)}"><p>Verdict: {head}</p>'
        f"<p>Evidence:</p><ul>{evidence}</ul><p>Remedies, best first:</p><ol>{remedies}</ol>"
        f"{suggested}</div>"
    )


def diagnosis_html(d: Diagnosis) -> str:
    """A Diagnosis as a notebook fragment: summary line, verdict, lag profile."""
    s = Snapshot(0, d)
    fig = figures.lag_profile([s], title="gradient against lag", labels=["this diagnosis"])
    flow = d.flow
    summary = (
        f"<p>{escape(d.model.get('cell', '?'))}, H = {d.model.get('hidden_size')}, T = "
        f"{d.steps}, B = {d.batch}: loss {d.loss:.4g}, ‖∂L/∂θ‖ {finite_g(d.grad_norm)}; "
        f"{per_step(flow.decay_factor)} back, horizon {flow.horizon} steps, ratio "
        f"{finite_g(flow.ratio)} at τ = {flow.ratio_lag}.</p>"
    )
    body = (
        "<h3>Diagnosis</h3>"
        + summary
        + verdict_html(s)
        + figure_html(fig, "Gradient against lag; dashed: the bound (γ·σ_max(W))^τ.", "svg")
    )
    return fragment(body)
