"""Tasks: analytic baselines against their memoryless predictors, layouts sample by sample,
dependency lengths, determinism, streaming, sampling, and one-line errors for bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab import tasks
from rnnlab.tasks import AddingTask, CharLMTask, CopyTask, TemporalOrderTask
from rnnlab.tasks.charlm import UNKNOWN, read_text

N = 100_000  # samples behind every baseline check


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def within_3_se(values: np.ndarray, expected: float) -> None:
    """The sample mean of per-sequence `values` is within 3 standard errors of `expected`."""
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert abs(values.mean() - expected) <= 3 * se + 1e-12, (values.mean(), expected, se)


@pytest.fixture(scope="module")
def shakespeare() -> CharLMTask:
    return CharLMTask(T=1)


# --- registry -----------------------------------------------------------------------------


def test_registry_names_and_classes() -> None:
    assert tasks.names() == ["adding", "charlm", "copy", "temporal_order"]
    expected = {"adding": AddingTask, "copy": CopyTask, "temporal_order": TemporalOrderTask}
    for name, cls in expected.items():
        task = tasks.get(name, T=12)
        assert type(task) is cls and task.name == name and task.params["T"] == 12


@pytest.mark.parametrize("name", ["adding", "copy", "temporal_order"])
def test_params_rebuild_the_same_task(name: str) -> None:
    task = tasks.get(name, T=15, seed=3, val_size=7, dtype="float64")
    again = tasks.get(name, **task.params)
    for a, b in zip(task.validation, again.validation, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


# --- baselines: analytic value vs the empirical loss of the memoryless predictor -----------


def test_adding_le2015_baseline_predict_one() -> None:
    task = AddingTask(T=10)
    X, Y, mask = task.batch(rng(1), N)
    sq = (1.0 - Y[-1, :, 0].astype(np.float64)) ** 2
    within_3_se(sq, task.baseline)
    assert task.baseline == pytest.approx(1 / 6)
    metrics = task.metrics(np.ones((10, N, 1)), Y, mask)
    assert metrics["loss"] == metrics["mse"] == pytest.approx(sq.mean())


def test_adding_hochreiter_baseline_predict_half() -> None:
    task = AddingTask(T=20, variant="hochreiter1997")
    _, Y, mask = task.batch(rng(2), N)
    sq = (0.5 - Y[-1, :, 0].astype(np.float64)) ** 2
    within_3_se(sq, task.baseline)
    assert task.baseline == pytest.approx(1 / 24)


def test_copy_baseline_blank_then_uniform() -> None:
    task = CopyTask(T=5)
    K, L = 10, task.length
    # log-probabilities of the memoryless predictor: blank for T + 10 steps, then 1/8 each
    logp = np.full((L, K), -1e9)
    logp[: task.T + 10, 8] = 0.0
    logp[task.T + 10 :, :8] = -math.log(8)
    per_sequence = []
    for seed in range(10):  # 10 × 10,000 sequences keeps the (T, B, K) arrays small
        _, Y, mask = task.batch(rng(seed), N // 10)
        per_sequence.append(-logp[np.arange(L)[:, None], Y].mean(axis=0))
        if seed == 0:
            outputs = np.broadcast_to(logp[:, None, :], (L, N // 10, K))
            metrics = task.metrics(outputs, Y, mask)
            assert metrics["cross_entropy"] == pytest.approx(task.baseline, rel=1e-12)
    within_3_se(np.concatenate(per_sequence), task.baseline)
    assert task.baseline == pytest.approx(10 * math.log(8) / 25)
    # the recalled symbols are uniform over 0–7, which makes 1/8 the best guess
    _, Y, _ = task.batch(rng(11), N)
    freq = np.bincount(Y[-10:].ravel(), minlength=10) / Y[-10:].size
    se = math.sqrt((1 / 8) * (7 / 8) / Y[-10:].size)
    np.testing.assert_array_less(np.abs(freq[:8] - 1 / 8), 3 * se)
    assert freq[8:].sum() == 0


def test_temporal_order_baseline_uniform_classes() -> None:
    task = TemporalOrderTask(T=10)
    _, Y, mask = task.batch(rng(3), N)
    metrics = task.metrics(np.zeros((10, N, 4)), Y, mask)
    # uniform logits score −log(1/4) on every sequence, whatever its class
    assert metrics["cross_entropy"] == pytest.approx(math.log(4), rel=1e-12)
    assert task.baseline == pytest.approx(math.log(4), rel=1e-12)
    # the classes are equally likely, so the uniform guess is the best input-ignoring one
    freq = np.bincount(Y[-1], minlength=4) / N
    np.testing.assert_array_less(np.abs(freq - 0.25), 3 * math.sqrt(0.25 * 0.75 / N))


def test_charlm_baseline_unigram_entropy(shakespeare: CharLMTask) -> None:
    text = read_text(None)
    train = shakespeare.encode(text[: len(text) * 9 // 10])
    p = np.bincount(train, minlength=shakespeare.output_size) / len(train)
    _, Y, mask = shakespeare.batch(rng(4), N)  # T = 1: N independent characters
    within_3_se(-np.log(p[Y[0]]), shakespeare.baseline)
    assert shakespeare.baseline_bits == pytest.approx(shakespeare.baseline / math.log(2))
    metrics = shakespeare.metrics(np.broadcast_to(np.log(p), (1, N, len(p))), Y, mask)
    assert metrics["cross_entropy"] == pytest.approx(-np.log(p[Y[0]]).mean())
    assert metrics["bits_per_char"] == pytest.approx(metrics["cross_entropy"] / math.log(2))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["cross_entropy"]))


# --- layouts, every sample ------------------------------------------------------------------


@pytest.mark.parametrize("T", [2, 11, 100])
def test_adding_le2015_layout(T: int) -> None:
    task = AddingTask(T=T, dtype="float64")
    X, Y, mask = task.batch(rng(T), 5000)
    markers = X[:, :, 1]
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers[: T // 2].sum(axis=0), 1)  # one in the first half
    np.testing.assert_array_equal(markers[T // 2 :].sum(axis=0), 1)  # one in the second
    values = X[:, :, 0]
    assert values.min() >= 0 and values.max() < 1
    np.testing.assert_allclose(Y[-1, :, 0], (values * markers).sum(axis=0), rtol=1e-15)
    assert not Y[:-1].any()
    np.testing.assert_array_equal(mask, np.eye(T)[-1][:, None] * np.ones((1, 5000)))


@pytest.mark.parametrize("T", [20, 100])
def test_adding_hochreiter_layout(T: int) -> None:
    task = AddingTask(T=T, variant="hochreiter1997", dtype="float64")
    X, Y, _ = task.batch(rng(T), 5000)
    markers, values = X[:, :, 1], X[:, :, 0]
    np.testing.assert_array_equal(markers.sum(axis=0), 2)
    steps = np.argwhere(markers.T == 1)[:, 1].reshape(-1, 2)  # (B, 2), sorted per sequence
    assert (steps[:, 0] < 10).all()  # X1 among the first ten
    assert (steps[:, 1] <= T // 2 - 1).all()  # X2 among the first T/2 − 1 others
    assert steps[:, 1].max() == T // 2 - 1
    assert values.min() >= -1 and values.max() < 1
    np.testing.assert_allclose(Y[-1, :, 0], 0.5 + (values * markers).sum(axis=0) / 4)


def test_float32_batches_round_the_float64_draws() -> None:
    for name in ("adding", "temporal_order"):
        X32, Y32, m32 = tasks.get(name, T=20).batch(rng(5), 64)
        X64, Y64, m64 = tasks.get(name, T=20, dtype="float64").batch(rng(5), 64)
        assert X32.dtype == m32.dtype == np.float32 and X64.dtype == np.float64
        np.testing.assert_array_equal(X32, X64.astype(np.float32))
        np.testing.assert_array_equal(Y32, Y64.astype(Y32.dtype))


@pytest.mark.parametrize("T", [1, 50])
def test_copy_layout(T: int) -> None:
    task = CopyTask(T=T)
    X, Y, mask = task.batch(rng(T), 5000)
    assert X.shape == Y.shape == mask.shape == (T + 20, 5000) and X.dtype == np.int64
    assert X[:10].max() <= 7 and X[:10].min() >= 0
    assert (X[10 : T + 9] == 8).all() and (X[T + 9] == 9).all() and (X[T + 10 :] == 8).all()
    assert (Y[: T + 10] == 8).all()
    np.testing.assert_array_equal(Y[T + 10 :], X[:10])  # the target recalls the input
    assert (mask == 1).all()


@pytest.mark.parametrize("T", [10, 17, 100])
def test_temporal_order_layout(T: int) -> None:
    task = TemporalOrderTask(T=T)
    X, Y, mask = task.batch(rng(T), 5000)
    np.testing.assert_array_equal(X.sum(axis=-1), 1)  # one-hot
    symbols = X.argmax(axis=-1)  # (T, B)
    is_ab = symbols < 2
    np.testing.assert_array_equal(is_ab.sum(axis=0), 2)
    steps = np.argwhere(is_ab.T)[:, 1].reshape(-1, 2)  # (B, 2)
    p1, p2 = steps[:, 0], steps[:, 1]
    assert (10 * p1 >= T).all() and (10 * p1 < 2 * T).all()  # p1 ∈ [0.1T, 0.2T)
    assert (10 * p2 >= 5 * T).all() and (10 * p2 < 6 * T).all()  # p2 ∈ [0.5T, 0.6T)
    cols = np.arange(5000)
    np.testing.assert_array_equal(Y[-1], 2 * symbols[p1, cols] + symbols[p2, cols])
    assert mask[-1].all() and not mask[:-1].any()


# --- dependency lengths, against the layout ---------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "T"),
    [("le2015", 10), ("le2015", 101), ("hochreiter1997", 20), ("hochreiter1997", 100)],
)
def test_adding_dependency_length(variant: str, T: int) -> None:
    task = AddingTask(T=T, variant=variant)
    X, _, _ = task.batch(rng(6), 20_000)
    first = X[:, :, 1].argmax(axis=0)  # earliest marker of each sequence
    assert (T - 1 - first).min() == task.dependency_length  # shortest lag, and attained


def test_copy_dependency_length() -> None:
    task = CopyTask(T=30)
    X, Y, _ = task.batch(rng(7), 100)
    lag = task.dependency_length
    assert lag == 40
    np.testing.assert_array_equal(Y[lag : lag + 10], X[:10])  # step i is written at i + lag


@pytest.mark.parametrize("T", [10, 100])
def test_temporal_order_dependency_length(T: int) -> None:
    task = TemporalOrderTask(T=T)
    X, _, _ = task.batch(rng(8), 20_000)
    first = (X.argmax(axis=-1) < 2).argmax(axis=0)
    assert (T - 1 - first).min() == task.dependency_length


def test_charlm_dependency_length(tmp_path: Path) -> None:
    assert CharLMTask(path=_write(tmp_path, "abcdefgh" * 10), T=6).dependency_length == 5


# --- metrics and solved ---------------------------------------------------------------------


def _one_hot_logits(Y: np.ndarray, K: int, scale: float = 30.0) -> np.ndarray:
    return scale * np.eye(K)[Y]


@pytest.mark.parametrize("name", ["adding", "copy", "temporal_order"])
def test_perfect_outputs_solve_and_baseline_outputs_do_not(name: str) -> None:
    task = tasks.get(name, T=20)
    X, Y, mask = task.validation
    if task.loss == "mse":
        perfect = Y
        baseline = np.full_like(Y, 1.0)
    else:
        perfect = _one_hot_logits(Y, task.output_size)
        baseline = np.zeros(Y.shape + (task.output_size,))
    good = task.metrics(perfect, Y, mask)
    assert good["accuracy"] == 1.0 and good["loss"] < 1e-6 and task.solved(good)
    bad = task.metrics(baseline, Y, mask)
    assert not task.solved(bad) and bad["loss"] > 0.5 * task.baseline


def test_adding_accuracy_is_hochreiters_criterion() -> None:
    task = AddingTask(T=20, variant="hochreiter1997", val_size=4)
    _, Y, mask = task.validation
    outputs = Y + np.array([0.0, 0.039, -0.039, 0.041])[None, :, None]
    metrics = task.metrics(outputs, Y, mask)
    assert metrics["accuracy"] == 0.75 and not task.solved(metrics)
    assert task.solved(task.metrics(Y + 0.03, Y, mask))


def test_cross_entropy_ignores_masked_ids_and_matches_definition() -> None:
    task = CopyTask(T=1)
    X, Y, mask = task.batch(rng(9), 3)
    outputs = rng(10).normal(size=Y.shape + (10,))
    mask = mask.copy()
    mask[0] = 0
    Y = Y.copy()
    Y[0] = -5  # any value where mask is 0
    logp = outputs - np.log(np.exp(outputs).sum(axis=-1, keepdims=True))
    expected = -np.take_along_axis(logp[1:], Y[1:, :, None], axis=-1).mean()
    assert task.metrics(outputs, Y, mask)["cross_entropy"] == pytest.approx(expected)


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["adding", "copy", "temporal_order", "charlm"])
def test_same_seed_same_batches(name: str) -> None:
    task = tasks.get(name, T=12)
    a, b, c = (task.batch(rng(s), 16) for s in (42, 42, 43))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.X, c.X)
    # the validation set is a function of the task's seed alone, distinct from training draws
    np.testing.assert_array_equal(task.validation.X, tasks.get(name, T=12).validation.X)
    assert not np.array_equal(task.validation.X, tasks.get(name, T=12, seed=1).validation.X)
    assert not any(array.flags.writeable for array in task.validation)
    train = task.batch(rng(task.seed), task.val_size)
    assert not np.array_equal(task.validation.X, train.X)


# --- charlm: splits, streams, validation, sampling ------------------------------------------


def _write(tmp_path: Path, text: str | bytes, name: str = "corpus.txt") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def _random_text(n: int, alphabet: str = "abcdéfg\n ") -> str:
    return "".join(rng(12).choice(list(alphabet), n))


def test_charlm_streams_are_contiguous(tmp_path: Path) -> None:
    text = _random_text(200)
    task = CharLMTask(path=_write(tmp_path, text), T=5)
    train = text[:180]
    B = 3
    L = (len(train) - 1) // B  # 59 characters per stream
    assert task.n_chunks(B) == L // 5
    chunks = list(task.stream(B))
    assert len(chunks) == L // 5
    X = np.concatenate([c.X for c in chunks])  # (n·T, B)
    Y = np.concatenate([c.Y for c in chunks])
    for b in range(B):
        assert task.decode(X[:, b]) == train[b * L : b * L + len(X)]
        assert task.decode(Y[:, b]) == train[b * L + 1 : b * L + 1 + len(X)]
    resumed = list(task.stream(B, start=2))
    np.testing.assert_array_equal(resumed[0].X, chunks[2].X)
    assert len(list(task.stream(2, "validation"))) == 19 // 2 // 5


def test_charlm_vocabulary_split_and_windows(tmp_path: Path) -> None:
    text = _random_text(300)
    task = CharLMTask(path=_write(tmp_path, text), T=7, val_size=40)
    assert task.vocab == "".join(sorted(set(text[:270])))
    assert task.input_size == task.output_size == len(task.vocab) and task.input_ids
    for X, Y, split in (
        (*task.batch(rng(13), 40)[:2], text[:270]),
        (*task.validation[:2], text[270:]),
    ):
        np.testing.assert_array_equal(X[1:], Y[:-1])
        for b in range(40):
            assert task.decode(X[:, b]) + task.decode(Y[-1:, b]) in split


def test_charlm_windows_start_anywhere_in_their_split(tmp_path: Path) -> None:
    train = "".join(chr(0x100 + i) for i in range(270))  # distinct: id = position in train
    text = train + train[:30]  # the validation split repeats the first 30
    task = CharLMTask(path=_write(tmp_path, text), T=7, val_size=3000)
    starts = task.batch(rng(16), 30_000).X[0]
    counts = np.bincount(starts, minlength=270)
    assert (counts[: 270 - 7] > 0).all() and not counts[270 - 7 :].any()
    assert counts.max() < 2 * counts[: 270 - 7].mean()  # uniform, roughly
    np.testing.assert_array_equal(np.unique(task.validation.X[0]), np.arange(30 - 7))


def test_charlm_unknown_validation_characters(tmp_path: Path) -> None:
    task = CharLMTask(path=_write(tmp_path, "ab" * 45 + "abzabababa"), T=3)
    assert task.vocab == "ab" + UNKNOWN
    X, _, _ = task.chunk(0, 1, "validation")
    assert task.decode(X[:, 0]) == "ab" + UNKNOWN


class _CountingModel:
    """Logits favour (last id + 1) mod K; the state counts the steps seen so far."""

    def __init__(self, K: int) -> None:
        self.K = K
        self.state = 0

    def forward(self, X: np.ndarray, h0: int | None) -> tuple[np.ndarray, int]:
        assert X.ndim == 2 and X.dtype == np.int64
        self.state = (0 if h0 is None else h0) + X.shape[0]
        o = np.zeros((*X.shape, self.K))
        np.put_along_axis(o, ((X + 1) % self.K)[..., None], 60.0, axis=-1)
        return o, self.state


def test_charlm_sample_carries_state(tmp_path: Path) -> None:
    task = CharLMTask(path=_write(tmp_path, "abcdefgh" * 20), T=5)
    model = _CountingModel(task.output_size)
    out = task.sample(model, rng(14), prime="ab", temperature=1.0, length=10)
    assert out == "cdefghabcd"
    assert model.state == 2 + 10 - 1  # prime, then one step per draw but the last
    hot = [task.sample(model, rng(s), "a", temperature=1e3, length=200) for s in (15, 16)]
    assert hot[0] != hot[1] and set(hot[0]) == set("abcdefgh")
    same = task.sample(model, rng(15), "a", temperature=1e3, length=200)
    assert same == hot[0]
    assert task.sample(model, rng(0), "a", length=0) == ""


def test_charlm_temperature_0_is_the_argmax_continuation(tmp_path: Path) -> None:
    task = CharLMTask(path=_write(tmp_path, "the cat sat on the mat. " * 20), T=8)
    model = rnnlab.GRU(
        input_size=task.input_size, hidden_size=8, output_size=task.output_size, seed=3
    )
    ids = list(task.encode("the "))
    o, state = model.forward(np.array(ids)[:, None], None)  # by hand: feed back the argmax
    for _ in range(30):
        ids.append(int(o[-1, 0].argmax()))
        o, state = model.forward(np.array(ids[-1:])[:, None], state)
    greedy = task.decode(np.array(ids[4:]))
    assert task.sample(model, rng(1), "the ", temperature=0, length=30) == greedy
    assert task.sample(model, rng(2), "the ", temperature=0, length=30) == greedy
    warm = [task.sample(model, rng(s), "the ", temperature=1.5, length=30) for s in (1, 2)]
    assert warm[0] != warm[1]


def test_charlm_baselines_in_each_metrics_units(tmp_path: Path) -> None:
    task = CharLMTask(path=_write(tmp_path, "aab" * 40), T=4)
    H = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))  # nats per character
    assert task.baselines == pytest.approx(
        {"loss": H, "cross_entropy": H, "bits_per_char": H / math.log(2), "perplexity": math.exp(H)}
    )
    assert tasks.get("adding").baselines == {"loss": 1 / 6, "mse": 1 / 6}


# --- bad input: one line naming the argument, the value and what is allowed ------------------


def _bad_cases(tmp_path: Path) -> list[tuple[object, str]]:
    small = CharLMTask(path=_write(tmp_path, "abcdefgh" * 20, "small.txt"), T=5)
    return [
        (lambda: tasks.get("copy", T=0), r"^T: got 0; expected an integer >= 1"),
        (lambda: tasks.get("temporal_order", T=9), r"^T: got 9; expected an integer >= 10"),
        (lambda: tasks.get("adding", T=1), r"^T: got 1; expected an integer >= 2"),
        (lambda: tasks.get("adding", T=19, variant="hochreiter1997"), r"^T: got 19; .*>= 20"),
        (lambda: tasks.get("adding", T=2.5), r"^T: got 2.5; expected an integer"),
        (lambda: tasks.get("copy", T=True), r"^T: got True; expected an integer"),
        (lambda: tasks.get("nope"), r"^name: got 'nope'; expected one of adding, charlm, copy"),
        (lambda: tasks.get("adding", variant="x"), r"^variant: got 'x'; expected one of le2015"),
        (lambda: tasks.get("adding", steps=3), r"^steps: not a parameter of task 'adding'"),
        (lambda: tasks.get("adding", dtype="float16"), r"^dtype: got 'float16'; expected"),
        (lambda: tasks.get("copy", seed=-1), r"^seed: got -1; expected an integer >= 0"),
        (lambda: tasks.get("copy", val_size=0), r"^val_size: got 0; expected an integer >= 1"),
        (lambda: tasks.get("copy").batch(rng(), 0), r"^batch_size: got 0; expected .* >= 1"),
        (lambda: tasks.get("adding").batch(rng(), -3), r"^batch_size: got -3; expected"),
        (lambda: tasks.get("temporal_order").batch(rng(), 2.0), r"^batch_size: got 2.0;"),
        (lambda: small.batch(rng(), 0), r"^batch_size: got 0; expected"),
        (lambda: tasks.get("adding").batch(0, 4), r"^rng: got int; expected a numpy"),
        (lambda: CharLMTask(path=tmp_path / "missing.txt"), r"^path: got '.*missing.txt' \("),
        (lambda: CharLMTask(path=tmp_path), r"^path: got '.*' \(a folder, not a regular file\)"),
        (lambda: CharLMTask(path=_write(tmp_path, b"")), r"^path: got '.*', an empty file"),
        (lambda: CharLMTask(path=_write(tmp_path, b"ok \xff\xfe")), r"^path: .*not UTF-8 at"),
        (lambda: CharLMTask(path=_write(tmp_path, "abc")), r"^path: .* 3 characters; expected"),
        (
            lambda: CharLMTask(path=_write(tmp_path, "a" * 100), T=10),
            r"^T: got 10; expected 1 <= T <= 9",
        ),
        (lambda: small.chunk(99, 2), r"^index: got 99; expected an integer in \[0, 14\)"),
        (lambda: small.chunk(0, 2, "test"), r"^split: got 'test'; expected one of train"),
        (lambda: small.n_chunks(100), r"^batch_size: got 100; expected 1 <= batch_size <= 28"),
        (lambda: small.stream(2, start=-1), r"^start: got -1; expected an integer >= 0"),
        (
            lambda: small.sample(_CountingModel(8), rng(), "ab", temperature=-0.5),
            r"^temperature: got -0.5; expected a number >= 0 \(0: the most likely",
        ),
        (lambda: small.sample(_CountingModel(8), rng(), "aZ"), r"^prime: got character 'Z'"),
        (lambda: small.sample(_CountingModel(8), rng(), ""), r"^prime: got ''; expected"),
        (lambda: small.sample(_CountingModel(5), rng(), "a"), r"^model: got output_size 5;"),
        (
            lambda: tasks.get("copy", T=3).metrics(
                np.zeros((23, 2, 9)), *tasks.get("copy", T=3).batch(rng(), 2)[1:]
            ),
            r"^outputs: got \(23, 2, 9\); expected",
        ),
    ]


def test_bad_input_raises_one_line_value_errors(tmp_path: Path) -> None:
    for make, pattern in _bad_cases(tmp_path):
        with pytest.raises(ValueError, match=pattern) as info:
            make()  # type: ignore[operator]
        assert "\n" not in str(info.value)


# --- end to end -------------------------------------------------------------------------------


def test_lstm_solves_adding_at_T10() -> None:
    """An LSTM trained with `fit` reaches `solved` on adding at T = 10 within 300 steps,
    while the untrained model sits above 50 % of the baseline."""
    import rnnlab
    from rnnlab.train import TrainConfig, evaluate, fit

    task = tasks.get("adding", T=10)
    model = rnnlab.LSTM(input_size=2, hidden_size=32, output_size=1, seed=0)
    untrained = evaluate(model, task)
    assert untrained["mse"] > 0.5 * task.baseline
    assert not task.solved(untrained)
    history = fit(model, task, TrainConfig(steps=300, lr=1e-2, eval_every=100), quiet=True)
    final = history.final_metrics
    assert history.status == "done" and final["step"] == 300
    assert task.solved(final), final
    assert final["mse"] <= 0.01


def test_masked_mean_ignores_what_unscored_steps_hold():
    """Outputs that overflowed at steps the mask does not score must not turn a metric NaN."""
    from rnnlab.tasks.base import masked_mean

    values = np.array([[np.inf, np.nan], [2.0, 4.0]])
    mask = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert masked_mean(values, mask) == 3.0
    assert masked_mean(values, np.array([[1.0, 0.0], [1.0, 1.0]])) == np.inf
