"""Chrono initialisation (Tallec & Ollivier 2018) for the LSTM and the GRU.

What is asserted:
- LSTM: b_i == −b_f exactly; exp(b_f) lies in [1, T_max − 1] and is uniform there (a KS test
  at a fixed seed); every other parameter (U, W, b_g, b_o, V, c, and every layer) is the
  pytorch scheme's draw from the same seed, bit for bit, and b_f is that draw of b_f mapped
  affinely onto [1, T_max − 1] (chrono draws nothing more). GRU likewise for b_z alone.
- T_max defaults to the task's dependency length through `prepare` (copy T = 50: 60);
  an explicit t_max wins; one equal to the default is the same run id as none; configs
  without chrono dump no t_max (their run ids are unchanged: tests/test_prepared.py pins them).
- build(model.config) rebuilds a chrono model bit for bit; sweeps over init work; the
  memory budget still applies; bad values and cells without the gates get one line
  (`rnnlab run` exits 2 with no traceback).
- At initialisation, on copy (T = 50, lag 60), chrono's lag profile decays far slower than
  the pytorch scheme's, for the LSTM and the GRU (numbers measured below).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import rnnlab
from rnnlab.cli.main import cli
from rnnlab.diagnostics.flow import decay_factor, lag_profile
from rnnlab.engine.model import SequenceModel, build
from rnnlab.experiments.config import ConfigError, parse
from rnnlab.experiments.limits import MEMORY_LIMIT_ENV
from rnnlab.experiments.prepared import load_config, prepare
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import expand

scipy_stats = pytest.importorskip("scipy.stats")

# gate blocks (in units of H) whose bias chrono sets: LSTM (i, f, g, o), GRU (r, z, n)
CHRONO_BLOCKS = {"lstm": (0, 1), "gru": (1,)}
CARRY = {"lstm": 1, "gru": 1}  # b_f, b_z
GATELESS = ["rnn", "indrnn", "exprnn", "mingru", "minlstm"]


def model(cell: str, H: int = 64, L: int = 2, **kw) -> SequenceModel:
    kw = {"input_size": 3, "output_size": 2, "num_layers": L, "dtype": "float64", "seed": 0} | kw
    return SequenceModel(cell=cell, hidden_size=H, **kw)


def block(b: np.ndarray, k: int, H: int) -> np.ndarray:
    return b[k * H : (k + 1) * H]


def data(cell: str = "lstm", init: str = "chrono", **model_keys) -> dict:
    return {
        "model": {"cell": cell, "hidden_size": 8, "init": init, **model_keys},
        "task": {"name": "copy", "T": 50, "val_size": 8},
    }


# --- the drawn biases -------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_carry_bias_is_log_uniform_on_1_to_t_max_minus_1(cell):
    H, L, t_max = 256, 2, 60
    m = model(cell, H, L, init="chrono", t_max=t_max)
    carry = np.concatenate([block(m.params[f"b_{layer}"], CARRY[cell], H) for layer in range(L)])
    u = np.exp(carry)
    assert u.min() >= 1 and u.max() <= (t_max - 1) * (1 + 1e-12)
    # 512 draws; U[1, 59] itself: KS at a fixed seed, and the quartiles within sampling error
    assert scipy_stats.kstest(u, scipy_stats.uniform(1, t_max - 2).cdf).pvalue > 0.05
    quartiles = (np.quantile(u, [0.25, 0.5, 0.75]) - 1) / (t_max - 2)
    np.testing.assert_allclose(quartiles, [0.25, 0.5, 0.75], atol=0.06)
    if cell == "lstm":  # the input gate opens as little as the forget gate forgets
        for layer in range(L):
            b = m.params[f"b_{layer}"]
            np.testing.assert_array_equal(block(b, 0, H), -block(b, 1, H))
        b32 = model(cell, H, 1, init="chrono", t_max=t_max, dtype="float32").params["b_0"]
        np.testing.assert_array_equal(block(b32, 0, H), -block(b32, 1, H))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_every_other_parameter_is_the_pytorch_draw_of_the_same_seed(cell):
    H, L, t_max = 16, 2, 40
    chrono = model(cell, H, L, init="chrono", t_max=t_max, spectral_radius=0.9)
    pytorch = model(cell, H, L, init="pytorch", spectral_radius=0.9)
    assert chrono.params.keys() == pytorch.params.keys()
    k = 1 / np.sqrt(H)
    for name, v in chrono.params.items():
        if not name.startswith("b_") or name.startswith("b_hn"):
            np.testing.assert_array_equal(v, pytorch.params[name], err_msg=name)
            continue
        b, b_pytorch = v, pytorch.params[name]
        for g in range(len(b) // H):
            if g not in CHRONO_BLOCKS[cell]:
                np.testing.assert_array_equal(block(b, g, H), block(b_pytorch, g, H), name)
        # b_f (b_z) is the pytorch draw, U(±1/√H), mapped affinely onto [1, T_max − 1]
        expected = 1 + (block(b_pytorch, CARRY[cell], H) + k) / (2 * k) * (t_max - 2)
        np.testing.assert_allclose(np.exp(block(b, CARRY[cell], H)), expected, rtol=1e-12)


def test_the_seed_still_decides_the_draw():
    one, again, other = (model("gru", init="chrono", t_max=30, seed=s).params for s in (0, 0, 1))
    assert all(np.array_equal(one[k], again[k]) for k in one)
    assert not np.array_equal(block(one["b_0"], 1, 64), block(other["b_0"], 1, 64))


# --- T_max: its default, an explicit value, run ids, build ------------------------------------


@pytest.mark.parametrize(
    ("task", "dependency_length"),
    [
        ({"name": "copy", "T": 50}, 60),
        ({"name": "adding", "T": 40}, 20),
        ({"name": "temporal_order", "T": 60}, None),
    ],
)
def test_t_max_defaults_to_the_tasks_dependency_length(task, dependency_length):
    run = prepare(
        parse({"model": {"cell": "lstm", "hidden_size": 8, "init": "chrono"}, "task": task})
    )
    if dependency_length is not None:
        assert run.task.dependency_length == dependency_length
    assert run.model.config["t_max"] == run.model.scheme.t_max == run.task.dependency_length
    assert run.config.model.t_max is None
    assert "t_max" not in run.config.canonical_json  # what only the task decides is not stored


def test_an_explicit_t_max_wins_and_spelling_the_default_is_the_same_run():
    default = prepare(parse(data()))
    explicit = prepare(parse(data(t_max=25)))
    assert explicit.model.config["t_max"] == 25 and explicit.config.model.t_max == 25
    assert json.loads(explicit.config.canonical_json)["model"]["t_max"] == 25
    assert explicit.config.run_id != default.config.run_id
    spelled = prepare(parse(data(t_max=60)))  # copy T = 50: the default
    assert spelled.config.run_id == default.config.run_id
    assert spelled.config.canonical_json == default.config.canonical_json
    for k, v in default.model.params.items():
        np.testing.assert_array_equal(spelled.model.params[k], v)
    # a run's stored config prepares into the same run again (a worker, a resume)
    again = prepare(parse(json.loads(spelled.config.canonical_json)))
    assert again.config.run_id == default.config.run_id


def test_configs_without_chrono_dump_no_t_max():
    for model_keys in ({}, {"cell": "lstm"}, {"cell": "gru", "init": "orthogonal"}):
        config = parse({"model": model_keys})
        assert "t_max" not in config.model_dump()["model"]
        assert prepare(config).model.config["t_max"] is None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_build_of_model_config_rebuilds_a_chrono_model_bit_for_bit(cell):
    run = prepare(parse(data(cell) | {"train": {"seed": 3}}))
    config = run.model.config
    assert config["init"] == "chrono" and config["t_max"] == 60
    again = build(config, seed=3)
    assert again.config == config and type(again) is type(run.model)
    for k, v in run.model.params.items():
        np.testing.assert_array_equal(again.params[k], v, err_msg=k)
    direct = rnnlab.GRU if cell == "gru" else rnnlab.LSTM
    lib = direct(input_size=2, hidden_size=5, output_size=1, init="chrono", t_max=7, seed=1)
    rebuilt = build(lib.config, seed=1)
    assert all(np.array_equal(rebuilt.params[k], v) for k, v in lib.params.items())


# --- sweeps and the memory budget ---------------------------------------------------------------


def test_a_sweep_over_init_builds_both_and_keeps_the_pytorch_ids():
    base = {
        "model": {"cell": "lstm", "hidden_size": 8},
        "task": {"name": "copy", "val_size": 8},
        "sweep": {"model.init": ["pytorch", "chrono"], "task.T": [10, 20]},
    }
    sweep = expand(base)
    assert len(sweep.configs) == 4
    for point, config in zip(sweep.points, sweep.configs, strict=True):
        run = prepare(config)
        expected = 10 + point["task.T"] if point["model.init"] == "chrono" else None
        assert run.model.config["t_max"] == expected
        assert "t_max" not in config.canonical_json
        if point["model.init"] == "pytorch":  # the id it had before chrono existed
            plain = {k: v for k, v in base.items() if k != "sweep"}
            plain = plain | {"task": plain["task"] | {"T": point["task.T"]}}
            assert config.run_id == parse(plain).run_id
    # variants: t_max spelled as its default and left out are one point
    variants = {
        "model": {"cell": "gru", "hidden_size": 8, "init": "chrono"},
        "task": {"name": "copy", "T": 10, "val_size": 8},
        "sweep": {"model": [{"t_max": 20}, {}, {"t_max": 5}]},
    }
    assert [c.model.t_max for c in expand(variants).configs] == [None, 5]


def test_the_memory_budget_still_applies_to_a_chrono_run(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GiB")
    with pytest.raises(ConfigError, match=r"^model\.hidden_size: got 30000; the run would need"):
        prepare(parse(data(hidden_size=30000)))


# --- one-line errors ---------------------------------------------------------------------------

ERRORS = {
    "t_max: got None; expected an integer >= 3 (init 'chrono': the longest dependency "
    "to remember, in steps)": ("lstm", {"init": "chrono"}),
    "t_max: got 2; expected an integer >= 3 (init 'chrono': the longest dependency to "
    "remember, in steps)": ("gru", {"init": "chrono", "t_max": 2}),
    "t_max: got 9.5; expected an integer >= 3 (init 'chrono': the longest dependency to "
    "remember, in steps)": ("lstm", {"init": "chrono", "t_max": 9.5}),
    "t_max: got True; expected an integer >= 3 (init 'chrono': the longest dependency to "
    "remember, in steps)": ("lstm", {"init": "chrono", "t_max": True}),
    "t_max: got 60, but init 'pytorch' does not read it; expected it unset, or init 'chrono'": (
        "lstm",
        {"t_max": 60},
    ),
    "forget_bias: got 1.0, but init 'chrono' sets the forget-gate bias; expected it unset "
    "with init 'chrono'": ("lstm", {"init": "chrono", "t_max": 60, "forget_bias": 1.0}),
}


@pytest.mark.parametrize("message", ERRORS)
def test_bad_values_are_one_line_naming_the_argument(message):
    cell, kw = ERRORS[message]
    with pytest.raises(ValueError) as err:
        model(cell, **kw)
    assert str(err.value) == message


@pytest.mark.parametrize("cell", GATELESS)
def test_a_cell_without_the_gates_refuses_chrono_naming_those_that_offer_it(cell):
    with pytest.raises(ValueError) as err:
        model(cell, init="chrono", t_max=60)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("init: got 'chrono', but only an LSTM or a GRU offers it, not ")
    assert line.endswith("; expected one of pytorch, glorot, normal, orthogonal, identity")


def test_config_errors_name_the_toml_path():
    cases = {
        "model.t_max: got 2; expected an integer >= 3": data(t_max=2),
        "model.t_max: got 2.5; expected a valid integer": data(t_max=2.5),
        "model.t_max: got 60, but init 'pytorch' does not read it": data(init="pytorch", t_max=60),
        "model.init: got 'chrono', but only an LSTM or a GRU offers it, not an RNN": data("rnn"),
        # the default, when the task's dependency is too short for it, says where it came from
        "model.t_max: got 1; expected an integer >= 3 (unset, so the task's dependency length; "
        "set it)": data() | {"task": {"name": "adding", "variant": "le2015", "T": 2}},
    }
    for start, config in cases.items():
        with pytest.raises(ConfigError) as err:
            prepare(parse(config))
        assert str(err.value).startswith(start) and "\n" not in str(err.value), str(err.value)


TOML = """
[model]
cell = "{cell}"
hidden_size = 4
init = "chrono"
{extra}
[task]
name = "copy"
T = 5
val_size = 8
[train]
steps = 2
eval_every = 2
checkpoint_every = 2
batch_size = 4
[diagnostics]
every = 2
probe_size = 4
jacobians = 1
"""


@pytest.mark.parametrize(
    ("cell", "extra", "words"),
    [
        ("lstm", "t_max = 2", "model.t_max: got 2; expected an integer >= 3"),
        ("rnn", "", "model.init: got 'chrono', but only an LSTM or a GRU offers it"),
        ("gru", 't_max = "long"', "model.t_max: got 'long'"),
    ],
)
def test_rnnlab_run_refuses_a_bad_chrono_config_in_one_line(tmp_path, cell, extra, words):
    path = tmp_path / "bad.toml"
    path.write_text(TOML.format(cell=cell, extra=extra))
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert words in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_rnnlab_run_trains_a_chrono_run_and_stores_its_config(tmp_path: Path):
    path = tmp_path / "chrono.toml"
    path.write_text(TOML.format(cell="lstm", extra=""))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    config = load_config(path)
    assert result.stdout.startswith(f"run {config.run_id}: done")
    stored = Store(out).get(config.run_id).config
    assert stored == config.model_dump() and "t_max" not in stored["model"]
    assert prepare(parse(stored)).model.config["t_max"] == 15  # copy T = 5: 5 + 10


# --- what it is for: the gradient reaches back further at initialisation -----------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_lag_profile_decays_slower_than_the_default_on_copy(cell):
    """Measured here (copy T = 50, lag 60, H = 32 and 64, seeds 0–3, float64), at the lag
    ‖∂L_T/∂h_{T−60}‖ / ‖∂L_T/∂h_T‖: LSTM pytorch 2e-14..4e-12, chrono 1.3e-3..1.6e-3;
    GRU pytorch 7e-14..3e-12, chrono 0.18..0.26 — 8.6 to 12.4 decades apart. Decay factors
    over lags 0..60: LSTM 0.61–0.67 against 0.952–0.959, GRU 0.61–0.65 against 0.973–0.978.
    Asserted with margins: 6 decades, and 0.2 on the decay factor."""
    measured = {}
    for init in ("pytorch", "chrono"):
        run = prepare(
            parse(
                {
                    "model": {"cell": cell, "hidden_size": 32, "init": init, "dtype": "float64"},
                    "task": {"name": "copy", "T": 50, "val_size": 32},
                }
            )
        )
        X, Y, mask = run.task.validation
        trace = run.model.loss_and_grads(X, Y, loss=run.task.loss, mask=mask).trace
        profile = lag_profile(run.model, trace, Y, loss=run.task.loss, mask=mask).profile[-1]
        lag = run.task.dependency_length
        measured[init] = (profile[lag], decay_factor(profile[: lag + 1]))
    (ratio_p, decay_p), (ratio_c, decay_c) = measured["pytorch"], measured["chrono"]
    assert ratio_c > 1e6 * ratio_p, measured
    assert decay_c > decay_p + 0.2, measured
