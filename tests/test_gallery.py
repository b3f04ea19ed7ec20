"""The every-cell figure's data (the demo report's lead figure): each curve says what the
report's caption says it does, measured."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.engine.cells import CELLS
from rnnlab.experiments.gallery import CELLS_AT_INIT, EXPLODING, VANISHING, every_cell_at_init


@pytest.fixture(scope="module")
def curves():
    return {c.label: c for c in every_cell_at_init(T=60, hidden_size=32, batch_size=8)}


def test_every_registered_cell_is_in_the_picture():
    assert {options["cell"] for _, _, options in CELLS_AT_INIT} == set(CELLS)


def test_the_failures_and_the_remedies_are_what_the_caption_says(curves):
    tau = np.arange(60)
    for c in curves.values():
        assert c.profile.shape == (60,) and c.profile[0] == pytest.approx(1.0)
    # the article's case lies under 0.8^τ (γ = 1 for tanh), and the default tanh RNN vanishes
    assert np.all(curves["tanh RNN, σ_max 0.8"].profile <= 0.8**tau * (1 + 1e-12))
    for c in curves.values():
        if c.family == VANISHING:
            assert c.profile[50] < 1e-5, c.label
        if c.family == EXPLODING:
            assert c.profile[50] > 100, c.label
    # what each remedy does: an orthogonal W, the IRNN and the LRU keep most of it
    for label in ("expRNN (orthogonal W)", "IRNN (ReLU, W = I)", "LRU"):
        assert curves[label].profile[50] > 0.05, label
    assert curves["LSTM, chrono init"].profile[50] > 1e3 * curves["LSTM"].profile[50]


def test_the_figure_draws_every_curve_and_the_article_line(curves):
    pytest.importorskip("matplotlib")
    from rnnlab.report import plots

    fig = plots.every_cell(list(curves.values()))
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    assert set(curves) <= set(lines)
    np.testing.assert_allclose(lines["tanh RNN"].get_ydata(), curves["tanh RNN"].profile)
    assert "0.8^τ (the article's bound)" in lines
