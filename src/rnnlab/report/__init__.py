"""Reports: figures and self-contained HTML from stored runs and sweeps.

    from rnnlab.report import Run, Sweep
    Run("runs/abc123")              # renders inline in Jupyter; .save("report.html")
    Sweep("results/adding").save("results/adding/report.html")

rnnlab.report.plots holds the figures (pure functions of stored data); rnnlab.report.html
the pages. matplotlib is imported only when a figure is drawn.
"""

from rnnlab.report.data import RunData, load_run_folder, load_store, load_store_run
from rnnlab.report.objects import Run, Sweep

__all__ = ["Run", "RunData", "Sweep", "load_run_folder", "load_store", "load_store_run"]
