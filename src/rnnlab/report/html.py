"""Self-contained HTML: every image inline (a data: URI), the styles and the table sorter in
the page; nothing is fetched, so a report reads offline and prints.

    run_page(run) -> str            one run: verdict, the article's argument, six figures
    sweep_page(runs) -> str         summary table (sortable), phase diagram, decay against
                                    ρ, loss curves, then every run
    diagnosis_html(d) -> str        a fragment for Diagnosis._repr_html_
    run_figures(run), sweep_figures(runs): the figures by name, for --figures DIR
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnlab.diagnostics.diagnose import finite_g, per_step
from rnnlab.report import cache, plots
from rnnlab.report.data import (
    Record,
    RunData,
    group_keys,
    group_label,
    no_diagnoses,
    num,
    w_block,
)
from rnnlab.report.story import points

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rnnlab.diagnostics.diagnose import Diagnosis

FigureMaker = Callable[[], "Figure"]

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
@media print { .rnnlab-report { max-width: none; } .rnnlab-report figure,
  .rnnlab-report .verdict { break-inside: avoid; } .rnnlab-report .screen { display: none; } }
"""

# Sorts a table by the clicked column: numbers by value (data-v), others as text.
SORTER = """
document.querySelectorAll('table.sortable:not([data-bound])').forEach(function (table) {
  table.dataset.bound = '1';
  table.querySelectorAll('th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var asc = th.dataset.order !== 'asc';
      th.dataset.order = asc ? 'asc' : 'desc';
      var key = function (row) {
        var cell = row.cells[i];
        var v = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent;
        var n = parseFloat(v);
        return isNaN(n) ? [1, v] : [0, n];
      };
      var body = table.tBodies[0];
      Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0);
        return asc ? c : -c;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
window.addEventListener('beforeprint', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
});
"""


def figure_uri(fig: Figure, fmt: str = "svg", dpi: int = 80) -> str:
    """The figure as a data: URI (SVG, or PNG at `dpi`)."""
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def _figure(fig: Figure, caption: str, fmt: str) -> str:
    return (
        f'<figure><img src="{figure_uri(fig, fmt)}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


# --- figures by name ----------------------------------------------------------------------------


def run_figures(run: RunData) -> dict[str, tuple[FigureMaker, str]]:
    """name -> (a function making the figure, its caption), in report order."""
    clip = run.config.get("train", {}).get("clip", {})
    d = run.diagnostics
    return {
        "lag_profile": (
            lambda: plots.lag_profile(d),
            "Gradient against lag at initialisation and after training; dashed: the bound "
            "(γ·σ_max(W))^τ (Elman RNN only).",
        ),
        "lag_heatmap": (
            lambda: plots.lag_heatmap(d),
            "Training step × lag: log10 of the gradient ratio; white: the gradient horizon.",
        ),
        "loss": (
            lambda: plots.loss_curves([run]),
            "Validation loss; dashed: the memoryless baseline; ×: where the run diverged.",
        ),
        "grad_norm": (
            lambda: plots.grad_norm(
                run.steps, clip.get("mode", "none"), clip.get("threshold"), run.diverged_at
            ),
            "Global gradient norm before clipping, every step, with the threshold.",
        ),
        "spectra": (
            lambda: plots.spectra(d),
            "σ_max (solid) and spectral radius ρ (dashed) of the recurrent weights.",
        ),
        "activations": (
            lambda: plots.activations(d),
            "Saturation, dead ReLUs and the carry gate over training.",
        ),
    }


def sweep_figures(runs: Sequence[RunData]) -> dict[str, tuple[FigureMaker, str]]:
    keys = group_keys(runs)
    labels = [group_label(r, keys) for r in runs]
    return {
        "phase_diagram": (
            lambda: plots.phase_diagram(runs),
            "Solved fraction over sequence length T and model (solved seeds / seeds; a "
            "diverged run counts as not solved).",
        ),
        "decay_vs_radius": (
            lambda: plots.decay_vs_radius(runs),
            "Measured decay per step of the lag profile at initialisation against ρ(W), Elman "
            "RNNs; triangles: the bound γ·σ_max(W), which the measurement never exceeds.",
        ),
        "loss": (
            lambda: plots.loss_curves(runs, labels=labels),
            "Validation loss of every run; dashed: the memoryless baseline; ×: diverged.",
        ),
    }


# --- pieces -----------------------------------------------------------------------------------


def verdict_html(record: Record, first: Record | None = None) -> str:
    """The verdict in words: label (and the one at initialisation), evidence, remedies."""
    v = record.get("verdict", {})
    label = str(v.get("label", "?"))
    head = f'<span class="label">{escape(label)}</span>'
    if first is not None and first is not record:
        was = first.get("verdict", {}).get("label", "?")
        head += (
            f" at step {record['step']} <span class='muted'>({escape(str(was))} at step "
            f"{first['step']})</span>"
        )
    evidence = "".join(f"<li>{escape(e)}</li>" for e in v.get("evidence", []))
    remedies = "".join(
        f"<li>{escape(r['action'])}{' <em>[in use]</em>' if r.get('in_use') else ''}"
        f" — <span class='muted'>{escape(r['reason'])}</span></li>"
        for r in v.get("remedies", [])
    )
    clip = num(v.get("suggested_clip"))
    suggested = f"<p>Suggested clipping threshold: {clip:.3g}.</p>" if math.isfinite(clip) else ""
    return (
        f'<div class="verdict {escape(label)}"><p>Verdict: {head}</p>'
        f"<p>Evidence:</p><ul>{evidence}</ul><p>Remedies, best first:</p><ol>{remedies}</ol>"
        f"{suggested}</div>"
    )


def story_html(run: RunData) -> str:
    items = "".join(
        f"<dt>{escape(p.title)}</dt><dd>{escape(p.claim)}<br>"
        f"<span class='measured'>{escape(p.measured)}</span></dd>"
        for p in points(run)
    )
    return f"<h3>The argument, with this run's numbers</h3><dl class='story'>{items}</dl>"


def _describe(run: RunData) -> str:
    status = run.status + (f" at step {run.diverged_at}" if run.diverged_at is not None else "")
    if run.error:
        status += f": {run.error}"
    hidden = escape(str(run.config.get("model", {}).get("hidden_size", "?")))
    monitor = run.config.get("monitor")
    if monitor is not None:  # a user's PyTorch model, not a run rnnlab trained
        return (
            f"<p>{escape(run.label)} (H = {hidden}) in a PyTorch "
            f"{escape(str(monitor.get('model_class', 'model')))}, diagnosed by "
            f"GradientFlowMonitor every {escape(str(monitor.get('every', '?')))} steps.<br>"
            f"Status: <b>{escape(status)}</b>.</p>"
        )
    t = run.config.get("train", {})
    clip = t.get("clip", {})
    clip_text = (
        "none"
        if clip.get("mode", "none") == "none"
        else (f"{clip.get('mode')} at {clip.get('threshold')}")
    )
    final = ", ".join(f"{k} {v:.4g}" for k, v in run.final.items())
    base = "" if run.baseline is None else f"; memoryless baseline {run.baseline:.4g}"
    return (
        f"<p>{escape(run.label)} (H = {hidden}) "
        f"on {escape(run.task)} T = {run.T}; {escape(str(t.get('optimizer', '?')))} lr "
        f"{t.get('lr', '?')}, {t.get('steps', '?')} steps, seed {t.get('seed', '?')}, "
        f"clipping {escape(clip_text)}.<br>Status: <b>{escape(status)}</b>. "
        f"Final: {escape(final) or 'no evaluation'}{base}.</p>"
    )


def run_section(run: RunData, fmt: str = "svg", level: int = 2) -> str:
    """One run's part of a report: description, verdict, the argument, the figures."""
    h = f"h{level}"
    parts = [f'<{h} id="run-{escape(run.id)}">Run {escape(run.id)}: {escape(run.label)}</{h}>']
    parts.append(_describe(run))
    if run.diagnostics:
        parts.append(verdict_html(run.diagnostics[-1], run.diagnostics[0]))
    else:
        why = no_diagnoses(run.config)
        parts.append(f"<p class='muted'>{escape(why[0].upper() + why[1:])}: no verdict and no "
                     "lag profiles.</p>")  # fmt: skip
    parts.append(story_html(run))
    figures = (_figure(make(), caption, fmt) for make, caption in run_figures(run).values())
    parts.append(f"<div class='figures'>{''.join(figures)}</div>")
    return "\n".join(parts)


COLUMNS = (
    "run", "model", "task", "T", "seed", "clip", "status", "loss", "baseline", "solved",
    "verdict", "decay/step", "horizon", "σ_max(W)", "seconds",
)  # fmt: skip


def summary_rows(runs: Sequence[RunData]) -> list[list[Any]]:
    """One row per run, COLUMNS in order (numbers stay numbers; None where unknown)."""
    rows = []
    keys = group_keys(runs)
    for run in runs:
        last = run.diagnostics[-1] if run.diagnostics else {}
        clip = run.config.get("train", {}).get("clip", {})
        flow = last.get("flow", {})
        rows.append(
            [
                run.id,
                group_label(run, keys),
                run.task,
                run.T,
                run.config.get("train", {}).get("seed"),
                clip.get("mode", "none")
                + (f" {clip['threshold']:g}" if clip.get("threshold") is not None else ""),
                run.status,
                run.final.get("loss"),
                run.baseline,
                run.solved,
                last.get("verdict", {}).get("label"),
                flow.get("decay_factor"),
                flow.get("horizon"),
                w_block(last).get("sigma_max") if last else None,
                run.seconds,
            ]
        )
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f'<td data-v="{int(value)}">{"yes" if value else "no"}</td>'
    if isinstance(value, int | float):
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f'<td class="n" data-v="{value!r}">{text}</td>'
    if value is None:
        return '<td data-v="" class="muted">–</td>'
    return f"<td>{escape(str(value))}</td>"


def summary_table(runs: Sequence[RunData]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>"
        + f'<td><a href="#run-{escape(row[0])}">{escape(row[0])}</a></td>'
        + "".join(_cell(v) for v in row[1:])
        + "</tr>"
        for row in summary_rows(runs)
    )
    return (
        '<div class="scroll"><table class="sortable" id="summary"><thead><tr>'
        f"{head}</tr></thead><tbody>{body}</tbody></table></div>"
        "<p class='muted screen'>Click a column's header to sort by it; the table scrolls "
        "sideways on a narrow screen.</p>"
    )


# --- pages ------------------------------------------------------------------------------------


def page(title: str, body: str) -> str:
    """A whole document: the styles and the sorter inline, no external resource."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><div class='rnnlab-report'><h1>{escape(title)}</h1>\n{body}\n</div>"
        f"<script>{SORTER}</script></body></html>\n"
    )


def fragment(body: str, sortable: bool = False) -> str:
    """For a notebook: the styles (scoped to .rnnlab-report) and the body."""
    script = f"<script>{SORTER}</script>" if sortable else ""
    return f"<div class='rnnlab-report'><style>{STYLE}</style>{body}</div>{script}"


def run_body(run: RunData, fmt: str = "svg") -> str:
    return run_section(run, fmt)


def run_page(run: RunData) -> str:
    return page(f"rnnlab report — run {run.id}", run_body(run))


def sweep_body(
    runs: Sequence[RunData],
    run_fmt: str = "png",
    intro: str = "",
    store: Path | None = None,
) -> str:
    """Intro (plain text), summary, sweep figures, then each run (figures as PNG: many
    runs, many figures). With `store`, each ended run's section is kept there and reused
    (report.cache)."""
    statuses = ", ".join(
        f"{sum(r.status == s for r in runs)} {s}" for s in dict.fromkeys(r.status for r in runs)
    )
    parts = [f"<p>{escape(p.strip())}</p>" for p in intro.split("\n\n") if p.strip()]
    parts += [f"<p>{len(runs)} runs: {escape(statuses)}.</p>", "<h2>Summary</h2>"]
    parts.append(summary_table(runs))
    figures = (_figure(make(), caption, "svg") for make, caption in sweep_figures(runs).values())
    parts.append(f"<div class='figures'>{''.join(figures)}</div>")
    parts.append("<h2>Runs</h2>")
    for i, run in enumerate(runs):

        def render(run: RunData = run) -> str:
            return run_section(run, run_fmt, level=3)

        body = render() if store is None else cache.section(store, run, (run_fmt, 3), render)
        opened = " open" if i == 0 else ""  # the first run reads without a click
        parts.append(
            f"<details{opened}><summary>{escape(run.id)} — {escape(run.label)}, T = {run.T}, "
            f"seed {run.config.get('train', {}).get('seed')}: {escape(run.status)}</summary>"
            f"{body}</details>"
        )
    return "\n".join(parts)


def sweep_page(runs: Sequence[RunData], title: str = "rnnlab report — sweep") -> str:
    return page(title, sweep_body(runs))


def diagnosis_html(d: Diagnosis) -> str:
    """A Diagnosis as a notebook fragment: summary line, verdict, lag profile."""
    record = {"step": 0} | d.to_dict()
    fig = plots.lag_profile([record], title="gradient against lag", labels=["this diagnosis"])
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
        + verdict_html(record)
        + _figure(fig, "Gradient against lag; dashed: the bound (γ·σ_max(W))^τ.", "svg")
    )
    return fragment(body)
