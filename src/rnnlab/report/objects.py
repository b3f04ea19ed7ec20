"""A run and a sweep as objects that render themselves: in a notebook (`_repr_html_`), as a
report file, or as figure files.

    Run("runs/abc123")                  a run folder (rnnlab train)
    Run("abc1", store="results")        a run of a store, by id or a unique prefix
    Sweep("results/adding")             every run of a store
    Sweep.of(runs, "title", intro="…")  runs held in memory (RunData.from_history)
    obj.save("report.html"); obj.save_figures("figures/"); obj.figures()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rnnlab._atomic import atomic_write
from rnnlab.report import html, plots
from rnnlab.report.data import RunData, load_run_folder, load_store, load_store_run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]


def _write(path: PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode())
    return path


class Run:
    """One run's report. `data` holds what was read (RunData)."""

    def __init__(self, target: PathLike, store: PathLike | None = None) -> None:
        if store is not None:
            self.data = load_store_run(store, str(target))
        else:
            self.data = load_run_folder(target)

    def figures(self) -> dict[str, Figure]:
        return {name: make() for name, (make, _) in html.run_figures(self.data).items()}

    @cached_property
    def _body(self) -> str:  # drawn once: a notebook re-displays, save() writes the same
        return html.run_body(self.data)

    def html(self) -> str:
        return html.page(f"rnnlab report — run {self.data.id}", self._body)

    def _repr_html_(self) -> str:
        return html.fragment(self._body)

    def save(self, path: PathLike) -> Path:
        return _write(path, self.html())

    def save_figures(self, folder: PathLike) -> list[Path]:
        """Each figure as folder/<name>.png and .svg."""
        return [p for name, fig in self.figures().items() for p in plots.save(fig, folder, name)]


class Sweep:
    """A store's report: summary, phase diagram, decay against ρ, and every run."""

    def __init__(self, folder: PathLike) -> None:
        self.runs: list[RunData] = load_store(folder)
        self.title = f"rnnlab report — {Path(folder).resolve().name}"
        self.intro = ""
        self.lead: list[tuple[Callable[[], Figure], str]] = []  # figures after the intro
        self.store: Path | None = Path(folder)  # where ended runs' sections are kept

    @classmethod
    def of(cls, runs: Sequence[RunData], title: str, intro: str = "") -> Sweep:
        """A report on `runs` from anywhere (e.g. RunData.from_history); `intro` is plain
        text shown first (paragraphs separated by blank lines)."""
        sweep = cls.__new__(cls)
        sweep.runs, sweep.title, sweep.intro, sweep.store = list(runs), title, intro, None
        sweep.lead = []
        return sweep

    def figures(self) -> dict[str, Figure]:
        """The sweep's figures, then each run's as '<run id>/<name>'."""
        out = {f"lead_{i}": make() for i, (make, _) in enumerate(self.lead)}
        out |= {name: make() for name, (make, _) in html.sweep_figures(self.runs).items()}
        for run in self.runs:
            for name, (make, _) in html.run_figures(run).items():
                out[f"{run.id}/{name}"] = make()
        return out

    @cached_property
    def _body(self) -> str:
        return html.sweep_body(self.runs, intro=self.intro, store=self.store, lead=self.lead)

    def html(self) -> str:
        return html.page(self.title, self._body)

    def _repr_html_(self) -> str:
        return html.fragment(self._body, sortable=True)

    def save(self, path: PathLike) -> Path:
        return _write(path, self.html())

    def save_figures(self, folder: PathLike) -> list[Path]:
        paths = []
        for name, fig in self.figures().items():
            sub, _, leaf = name.rpartition("/")
            paths += plots.save(fig, Path(folder) / sub, leaf)
        return paths
