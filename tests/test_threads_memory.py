"""The engine's thread count for its large products, and the glibc memory setting."""

from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import rnnlab
from rnnlab.engine import blas, memory


def _blas_threads() -> int:
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


def test_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(blas, "_num_threads", None)
    monkeypatch.delenv(blas.ENV, raising=False)
    assert rnnlab.get_num_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(blas.ENV, "3")
    assert rnnlab.get_num_threads() == 3


@pytest.mark.parametrize("bad", ["0", "-1", "two", ""])
def test_bad_environment_value_is_named(monkeypatch, bad):
    monkeypatch.setattr(blas, "_num_threads", None)
    monkeypatch.setenv(blas.ENV, bad)
    with pytest.raises(ValueError, match=rf"^RNNLAB_NUM_THREADS: got '{bad}'; expected"):
        rnnlab.get_num_threads()


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_set_num_threads_rejects(bad):
    with pytest.raises(ValueError, match=r"^num_threads: got .*; expected an integer >= 1$"):
        rnnlab.set_num_threads(bad)


def test_num_threads_context_sets_and_restores(monkeypatch):
    monkeypatch.setattr(blas, "_num_threads", 2)
    before = _blas_threads()
    with blas.num_threads(1):
        assert rnnlab.get_num_threads() == 1
        assert _blas_threads() == 1
    assert rnnlab.get_num_threads() == 2
    assert _blas_threads() == before


def test_matmul_uses_threads_only_for_large_products(monkeypatch):
    seen = []
    real_limit = blas._controller().limit

    def spy(limits):
        seen.append(limits)
        return real_limit(limits=limits)

    monkeypatch.setattr(blas._controller(), "limit", spy)
    monkeypatch.setattr(blas, "_num_threads", 2)
    rng = np.random.default_rng(0)
    small = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    large = rng.standard_normal((512, 64)), rng.standard_normal((64, 256))
    np.testing.assert_array_equal(blas.matmul(*small), small[0] @ small[1])
    assert seen == []
    np.testing.assert_allclose(blas.matmul(*large), large[0] @ large[1], rtol=1e-12)
    assert seen == [2]


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gradients_do_not_depend_on_the_thread_count(kind):
    model = rnnlab.engine.build(
        {"cell": kind, "input_size": 16, "hidden_size": 64, "output_size": 8}, seed=0
    )
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 32, 16)).astype(np.float32)
    Y = rng.integers(0, 8, size=(40, 32))
    results = []
    for n in (1, 2):
        with blas.num_threads(n):
            results.append(model.loss_and_grads(X, Y))
    (loss1, grads1, *_), (loss2, grads2, *_) = results
    assert loss1 == pytest.approx(loss2, rel=1e-6)
    for k in grads1:
        scale = np.abs(grads1[k]).max()
        np.testing.assert_allclose(grads2[k], grads1[k], rtol=0, atol=1e-5 * scale, err_msg=k)


def test_keep_freed_memory_sets_glibc_once():
    import platform

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    memory.keep_freed_memory.cache_clear()
    assert memory.keep_freed_memory() is expected
    assert memory.keep_freed_memory() is expected  # a second call is the cached result
    assert memory.keep_freed_memory.cache_info().hits == 1
