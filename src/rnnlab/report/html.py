"""Self-contained HTML: every image inline (a data: URI), the styles and the table sorter in
the page; nothing is fetched, so a report reads offline and prints.

    run_page(run) -> str            one run: verdict, the article's argument, six figures
    sweep_page(runs) -> str         summary table (sortable), phase diagram, decay against
                                    ρ, loss curves, then every run
    run_figures(run), sweep_figures(runs): the figures by name, for --figures DIR

A diagnosis's own pieces (its verdict block, a figure inline, the stylesheet) come from
rnnlab.diagnostics.html, which renders a Diagnosis in a notebook too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnlab import maths
from rnnlab.diagnostics.html import STYLE, figure_html, verdict_html
from rnnlab.diagnostics.html import fragment as _fragment
from rnnlab.diagnostics.record import exact_rate, gamma_sigma, w_block
from rnnlab.engine.cells import CELLS
from rnnlab.report import cache, plots
from rnnlab.report.data import RunData, group_labels, known, no_diagnoses
from rnnlab.report.plots import BOUNDED
from rnnlab.report.slider import SCRIPT as SLIDER
from rnnlab.report.slider import slider_html
from rnnlab.report.story import points

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FigureMaker = Callable[[], "Figure"]

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


# --- figures by name ----------------------------------------------------------------------------


def run_figures(run: RunData) -> dict[str, tuple[FigureMaker, str]]:
    """name -> (a function making the figure, its caption), in report order. Each caption
    says how to read its figure: the axes, the lines, what to look for, for this run."""
    clip = run.config.get("train", {}).get("clip", {})
    d = run.diagnostics
    elman = bool(d) and gamma_sigma(d[0].diagnosis) is not None
    dep = d[-1].diagnosis.flow.dependency_length if d else None
    needs = f" The dotted line is the lag the task needs ({dep} steps)." if dep is not None else ""
    exact = bool(d) and exact_rate(d[0].diagnosis) is not None
    cell = CELLS.get(str(run.config.get("model", {}).get("cell")))
    if exact:
        bound = (
            r" Dashed, in a curve's colour (theory): $\|\prod J\| = \rho^{\tau}$, exact "
            r"for this recurrence ($\rho = \max_j |\lambda_j|$ of a diagonal linear one; 1 "
            "for an orthogonal W); the curve lies under it."
        )
    elif elman:
        bound = (
            " Dashed, in a curve's colour: the bound "
            r"$(\gamma\,\sigma_{\max}(W))^{\tau}$, which that curve never crosses."
        )
    elif cell is not None and cell.carry is not None:
        bound = " Gated cells have no such bound: their gates set how much passes."
    else:
        bound = " No bound of the Pascanu form holds for this cell."
    mode, threshold = clip.get("mode", "none"), clip.get("threshold")
    if mode == "norm":
        threshold_text = (
            f"dashed: the threshold {threshold:g}, above which a step's gradient is scaled "
            "down to it"
        )
    elif mode == "value":
        threshold_text = f"each element was clipped at ±{threshold:g} (no threshold for the norm)"
    else:
        threshold_text = "no clipping in this run"
    span = plots.smoothing_span(len(run.steps))
    first = d[0].diagnosis.activations if d else []
    gate = next((a.gate for a in first if a.gate), None)
    phi = str(first[-1].nonlinearity) if first else ""
    stops = {
        "relu": "dead ReLUs (never active on the probe) and inactive activations (φ′ = 0) "
        "pass no gradient back",
        "identity": "nothing here: φ′ = 1 everywhere, so W alone sets it",
    }.get(phi, "saturated units (φ′ under 5 % of its maximum γ) pass almost no gradient back")
    gated = (
        f" Below: how the {gate} gate's values spread at the first and last diagnosis; a "
        "carry gate near 1 keeps the state and the gradient."
        if gate
        else ""
    )
    return {
        "lag_profile": (
            lambda: plots.lag_profile(d),
            "How much of the last step's gradient reaches τ steps back, "
            r"$\|\partial L_T/\partial h_{T-\tau}\| / \|\partial L_T/\partial h_T\|$"
            " on a log scale, at initialisation and after training: a falling line "
            "vanishes (a straight one by a constant factor per step), a rising one explodes."
            + bound
            + needs,
        ),
        "lag_heatmap": (
            lambda: plots.lag_heatmap(d),
            "One row per diagnosis during training (the step, upwards) and one column per lag "
            "τ; the colour is log10 of the same ratio, yellow where the gradient arrives, dark "
            "where it has vanished. The white line is the gradient horizon, the last lag with "
            "a ratio ≥ 1e−3: moving right, the run learns to reach further back.",
        ),
        "loss": (
            lambda: plots.loss_curves([run]),
            "Validation loss over training; dashed: the memoryless baseline, the loss of a "
            "model that does not remember the inputs it needs. A curve that stays on it has "
            "learnt nothing across the lag"
            + ("; ×: where the run diverged." if run.status == "diverged" else "."),
        ),
        "grad_norm": (
            lambda: plots.grad_norm(run.steps, mode, threshold, run.diverged_at),
            r"The global gradient norm $\|\partial L/\partial \theta\|$ before clipping, "
            "log scale: faint, every step; "
            f"solid, its moving average over ~{span:.0f} steps; {threshold_text}. A steady "
            "climb of the average means exploding; single spikes are single batches"
            + ("; red: where it became non-finite." if run.diverged_at is not None else "."),
        ),
        "spectra": (
            lambda: plots.spectra(d),
            "The recurrent weights over training: largest singular value σ_max (solid) and "
            "spectral radius ρ (dashed) of each block."
            + (
                " Dotted: 1/γ; with σ_max(W) below it the gradient must vanish, only above it "
                "can it explode."
                if elman
                else " For gated cells W stacks the gate blocks; each gate's block is drawn too."
            ),
        ),
        "activations": (
            lambda: plots.activations(d),
            f"What makes each Jacobian diag(φ′(a))·W small, over training: {stops}; a mean "
            "φ′ near γ passes it." + gated,
        ),
    }


def sweep_figures(runs: Sequence[RunData]) -> dict[str, tuple[FigureMaker, str]]:
    labels = group_labels(runs)
    varies = [
        f"{how}: {axis}"
        for how, axis, values in (
            ("line style", "T", {r.T for r in runs}),
            ("marker", "seed", {r.config.get("train", {}).get("seed") for r in runs}),
        )
        if len(values) > 1
    ]
    told = f" ({'; '.join(varies)})" if varies else ""
    return {
        "phase_diagram": (
            lambda: plots.phase_diagram(runs),
            "Solved fraction for each model (row) at each sequence length T (column): solved "
            "seeds / seeds, green when all solved the task, red when none did (a diverged run "
            "counts as not solved). Read a row left to right to see how far back a model's "
            "memory reaches.",
        ),
        "decay_vs_radius": (
            lambda: plots.decay_vs_radius(runs),
            f"Each {BOUNDED} at initialisation: the gradient's measured decay per "
            "step back (dot, fitted to its lag profile) against the spectral radius ρ(W), "
            "joined to its own bound γ·σ_max(W) (triangle). Below 1 the gradient vanishes, "
            "above it grows; "
            "a dot never rises above its triangle, and the dotted diagonal shows how well ρ "
            "alone predicts the decay.",
        ),
        "loss": (
            lambda: plots.loss_curves(runs, labels=labels),
            f"Validation loss of every run, one colour per model{told}; dashed: the memoryless "
            "baseline"
            + ("; ×: where a run diverged" if any(r.status == "diverged" for r in runs) else "")
            + ". Curves that fall well below the baseline learnt to remember; curves that stay "
            "on it did not.",
        ),
    }


# --- pieces -----------------------------------------------------------------------------------


def story_html(run: RunData) -> str:
    """The argument: each point's claim typeset (its $formulas$ as MathML), then this run's
    numbers."""
    items = "".join(
        f"<dt>{maths.html(p.title)}</dt><dd>{maths.html(p.claim)}<br>"
        f"<span class='measured'>{maths.html(p.measured)}</span></dd>"
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


def run_section(run: RunData, fmt: str = "svg", level: int = 2, title: str | None = None) -> str:
    """One run's part of a report: description, verdict, the argument, the figures. `title`
    names the run (its label by default; in a sweep, one that tells it from the others)."""
    h = f"h{level}"
    name = escape(title or run.label)
    parts = [f'<{h} id="run-{escape(run.id)}">Run {escape(run.id)}: {name}</{h}>']
    parts.append(_describe(run))
    if run.diagnostics:
        parts.append(verdict_html(run.diagnostics[-1], run.diagnostics[0]))
    else:
        why = no_diagnoses(run.config)
        parts.append(f"<p class='muted'>{escape(why[0].upper() + why[1:])}: no verdict and no "
                     "lag profiles.</p>")  # fmt: skip
    parts.append(story_html(run))
    figures = (figure_html(make(), caption, fmt) for make, caption in run_figures(run).values())
    parts.append(f"<div class='figures'>{''.join(figures)}</div>")
    if run.diagnostics:  # the bound against this run's own profile, for an Elman RNN
        slider = slider_html(run.diagnostics[0], run.id)
        if slider:
            parts.append(f"<h3>Move γ·σ_max(W): the bound and this run</h3>{slider}")
    return "\n".join(parts)


COLUMNS = (
    "run", "model", "task", "T", "seed", "clip", "status", "loss", "baseline", "solved",
    "verdict", "decay/step", "horizon", "σ_max(W)", "seconds",
)  # fmt: skip


def summary_rows(runs: Sequence[RunData]) -> list[list[Any]]:
    """One row per run, COLUMNS in order (numbers stay numbers; None where unknown)."""
    rows = []
    for run, label in zip(runs, group_labels(runs), strict=True):
        last = run.diagnostics[-1].diagnosis if run.diagnostics else None
        clip = run.config.get("train", {}).get("clip", {})
        w = w_block(last) if last else None
        rows.append(
            [
                run.id,
                label,
                run.task,
                run.T,
                run.config.get("train", {}).get("seed"),
                clip.get("mode", "none")
                + (f" {clip['threshold']:g}" if clip.get("threshold") is not None else ""),
                run.status,
                run.final.get("loss"),
                run.baseline,
                run.solved,
                last.verdict.label if last else None,
                known(last.flow.decay_factor) if last else None,
                last.flow.horizon if last else None,
                known(w.sigma_max) if w else None,
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


# columns that describe the setting: one all runs share is said once, above the table
SHARED = ("task", "T", "seed", "clip", "baseline")


def summary_table(runs: Sequence[RunData]) -> str:
    rows = summary_rows(runs)
    shared = [
        i
        for i, c in enumerate(COLUMNS)
        if c in SHARED and len(rows) > 1 and len({repr(r[i]) for r in rows}) == 1
    ]
    shown = [i for i in range(len(COLUMNS)) if i not in shared]
    said = ", ".join(
        f"{COLUMNS[i]}{' =' if COLUMNS[i] == 'T' else ''} {_text(rows[0][i])}"
        for i in shared
        if rows[0][i] is not None
    )
    head = "".join(f"<th>{escape(COLUMNS[i])}</th>" for i in shown)
    body = "".join(
        "<tr>"
        + f'<td><a href="#run-{escape(row[0])}">{escape(row[0])}</a></td>'
        + "".join(_cell(row[i]) for i in shown[1:])
        + "</tr>"
        for row in rows
    )
    return (
        (f"<p>Every run: {escape(said)}.</p>" if said else "")
        + '<div class="scroll"><table class="sortable" id="summary"><thead><tr>'
        f"{head}</tr></thead><tbody>{body}</tbody></table></div>"
        "<p class='muted screen'>Click a column's header to sort by it; the table scrolls "
        "sideways on a narrow screen.</p>"
    )


def _text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --- pages ------------------------------------------------------------------------------------


def page(title: str, body: str) -> str:
    """A whole document: the styles and the sorter inline, no external resource."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><div class='rnnlab-report'><h1>{escape(title)}</h1>\n{body}\n</div>"
        f"<script>{SORTER}{SLIDER}</script></body></html>\n"
    )


def fragment(body: str, sortable: bool = False) -> str:
    """For a notebook: the styles (scoped to .rnnlab-report), the body and the scripts."""
    return _fragment(body, (SORTER if sortable else "") + SLIDER)


def run_body(run: RunData, fmt: str = "svg") -> str:
    return run_section(run, fmt)


def run_page(run: RunData) -> str:
    return page(f"rnnlab report — run {run.id}", run_body(run))


def sweep_body(
    runs: Sequence[RunData],
    run_fmt: str = "png",
    intro: str = "",
    store: Path | None = None,
    lead: Sequence[tuple[FigureMaker, str]] = (),
) -> str:
    """Intro (text, its $formulas$ typeset), the `lead` figures (maker, caption) it speaks
    of, summary, sweep figures, then each run (figures as PNG: many runs, many figures).
    With `store`, each ended run's section is kept there and reused (report.cache)."""
    statuses = ", ".join(
        f"{sum(r.status == s for r in runs)} {s}" for s in dict.fromkeys(r.status for r in runs)
    )
    parts = [f"<p>{maths.html(p.strip())}</p>" for p in intro.split("\n\n") if p.strip()]
    if lead:
        shown = "".join(figure_html(make(), caption, "svg") for make, caption in lead)
        parts.append(f"<div class='figures'>{shown}</div>")
    parts += [f"<p>{len(runs)} runs: {escape(statuses)}.</p>", "<h2>Summary</h2>"]
    parts.append(summary_table(runs))
    figures = (
        figure_html(make(), caption, "svg") for make, caption in sweep_figures(runs).values()
    )
    parts.append(f"<div class='figures'>{''.join(figures)}</div>")
    parts.append("<h2>Runs</h2>")
    for i, (run, title) in enumerate(zip(runs, run_titles(runs), strict=True)):

        def render(run: RunData = run, title: str = title) -> str:
            return run_section(run, run_fmt, level=3, title=title)

        parts_key = (run_fmt, 3, title)  # the title depends on the other runs
        body = render() if store is None else cache.section(store, run, parts_key, render)
        opened = " open" if i == 0 else ""  # the first run reads without a click
        parts.append(
            f"<details{opened}><summary>{escape(run.id)} — {escape(title)}: "
            f"{escape(run.status)}</summary>{body}</details>"
        )
    return "\n".join(parts)


def run_titles(runs: Sequence[RunData]) -> list[str]:
    """Each run's group label, with T and the seed where they vary; a title two runs would
    still share (they differ in a task's own seed) gets the run id."""
    Ts = {r.T for r in runs}
    seeds = {r.config.get("train", {}).get("seed") for r in runs}
    titles = []
    for run, label in zip(runs, group_labels(runs), strict=True):
        title = label + (f", T = {run.T}" if len(Ts) > 1 else "")
        seed = run.config.get("train", {}).get("seed")
        titles.append(title + (f", seed {seed}" if len(seeds) > 1 else ""))
    count = Counter(titles)
    return [t if count[t] == 1 else f"{t} ({r.id})" for t, r in zip(titles, runs, strict=True)]


def sweep_page(runs: Sequence[RunData], title: str = "rnnlab report — sweep") -> str:
    return page(title, sweep_body(runs))
