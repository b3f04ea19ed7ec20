"""Optimisers against torch.optim, the third oracle: same gradients, 20 steps, float64."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.train import make_optimizer, state_slot

from conftest import need

torch = need("torch")  # under CI=1 a failure, not a skip

SHAPES = {"U": (4, 3), "W": (4, 4), "b": (4,), "V": (2, 4)}
STEPS = 20
TOL = 1e-12

# (our name, our hyperparameters); the torch twin is built by _torch_optimizer.
CASES = [
    ("sgd", {}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"weight_decay": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.2}),
    ("rmsprop", {}),
    ("rmsprop", {"weight_decay": 0.1, "alpha": 0.9}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    # alpha < 0.5 takes torch.lerp's other branch for the centred average
    ("rmsprop", {"centered": True, "momentum": 0.5, "alpha": 0.3, "weight_decay": 0.01}),
    ("adam", {}),
    ("adam", {"weight_decay": 0.1}),
    ("adam", {"beta1": 0.3, "beta2": 0.9, "eps": 1e-6}),  # lerp's other branch
    ("adam", {"amsgrad": True, "weight_decay": 0.05}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.2, "amsgrad": True}),
]

TORCH_SLOTS = {
    "sgd": ("momentum_buffer",),
    "adagrad": ("sum",),
    "rmsprop": ("square_avg", "grad_avg", "momentum_buffer"),
    "adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
}


def _torch_optimizer(name, hyper, tensors, lr):
    kw = dict(hyper)
    if name in ("adam", "adamw"):
        kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
    cls = {
        "sgd": torch.optim.SGD,
        "adagrad": torch.optim.Adagrad,
        "rmsprop": torch.optim.RMSprop,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
    }[name]
    # foreach=False pins torch to the single-tensor code path that optim.py transcribes
    return cls(tensors, lr=lr, foreach=False, **kw)


def _lr(t: int) -> float:
    # a varying lr checks that lr is really taken per step
    return 0.05 * (1 - t / (2 * STEPS))


def _grad(p: np.ndarray, noise: np.ndarray) -> np.ndarray:
    # gradients depend on the params, so a wrong update also changes later gradients
    return 0.5 * p + p**3 * 0.1 + noise


@pytest.mark.parametrize(("name", "hyper"), CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_matches_torch_optim(name, hyper):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    noises = [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(STEPS)]
    initial = {k: v.copy() for k, v in params.items()}

    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    t_opt = _torch_optimizer(name, hyper, list(tensors.values()), _lr(0))
    opt = make_optimizer(name, **hyper)
    state = opt.init(params)

    for t in range(STEPS):
        grads = {k: _grad(params[k], noises[t][k]) for k in SHAPES}
        params, state = opt.update(params, grads, state, _lr(t))

        for g in t_opt.param_groups:
            g["lr"] = _lr(t)
        for k, x in tensors.items():
            x.grad = torch.tensor(_grad(x.detach().numpy(), noises[t][k]))
        t_opt.step()

        assert int(state["step"]) == t + 1
        for k, x in tensors.items():
            np.testing.assert_allclose(params[k], x.detach().numpy(), rtol=0, atol=TOL)
            for slot in TORCH_SLOTS[name]:
                ours = state_slot(state, slot)
                if k in ours:
                    theirs = t_opt.state[x][slot].numpy()
                    np.testing.assert_allclose(ours[k], theirs, rtol=0, atol=TOL)
    # the comparison was not vacuous: the params moved
    assert all(np.abs(params[k] - initial[k]).max() > 1e-3 for k in SHAPES)


@pytest.mark.parametrize(("name", "hyper"), CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_update_is_pure(name, hyper):
    rng = np.random.default_rng(1)
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    opt = make_optimizer(name, **hyper)
    state = opt.init(params)
    for _ in range(2):  # the second step also exercises non-initial state
        grads = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
        before = [{k: v.copy() for k, v in d.items()} for d in (params, grads, state)]
        new_params, new_state = opt.update(params, grads, state, 0.1)
        for original, copy in zip((params, grads, state), before, strict=True):
            assert original.keys() == copy.keys()
            for k in copy:
                np.testing.assert_array_equal(original[k], copy[k])
        assert all(not np.shares_memory(new_params[k], params[k]) for k in params)
        assert set(new_state) == set(state)
        params, state = new_params, new_state


def test_state_layout():
    params = {"W": np.zeros((2, 2)), "b": np.zeros(2)}
    state = make_optimizer("adam").init(params)
    assert sorted(state) == ["exp_avg/W", "exp_avg/b", "exp_avg_sq/W", "exp_avg_sq/b", "step"]
    assert state["step"].shape == () and state["step"].dtype == np.int64
    assert sorted(make_optimizer("sgd").init(params)) == ["step"]
    assert sorted(state_slot(state, "exp_avg")) == ["W", "b"]


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "adamw"])
def test_float32_stays_float32(name):
    params = {"W": np.ones((2, 3), dtype=np.float32)}
    grads = {"W": np.full((2, 3), 0.5, dtype=np.float32)}
    opt = make_optimizer(name, weight_decay=np.float64(0.1))
    state = opt.init(params)
    params, state = opt.update(params, grads, state, np.float64(0.01))
    assert params["W"].dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in state.items() if k != "step")


def test_unknown_optimizer_names_argument_value_and_allowed():
    with pytest.raises(ValueError, match="optimizer") as e:
        make_optimizer("lbfgs")
    msg = str(e.value)
    assert "'lbfgs'" in msg and all(n in msg for n in ("sgd", "adagrad", "rmsprop", "adam"))
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("name", "hyper", "word"),
    [
        ("sgd", {"momentum": -0.1}, "momentum"),
        ("sgd", {"nesterov": True}, "nesterov"),
        ("sgd", {"momentum": 0.9, "dampening": 0.1, "nesterov": True}, "nesterov"),
        ("adam", {"beta1": 1.0}, "beta1"),
        ("adam", {"betas": (0.9, 0.99)}, "betas"),
        ("rmsprop", {"alpha": float("nan")}, "alpha"),
        ("adagrad", {"weight_decay": "0.1"}, "weight_decay"),
        ("rmsprop", {"centered": 1}, "centered"),
    ],
)
def test_bad_hyperparameters(name, hyper, word):
    with pytest.raises(ValueError, match=word):
        make_optimizer(name, **hyper)


def test_update_rejects_mismatched_inputs():
    params = {"W": np.zeros((2, 2))}
    opt = make_optimizer("adam")
    state = opt.init(params)
    with pytest.raises(ValueError, match="grads"):
        opt.update(params, {"V": np.zeros((2, 2))}, state, 0.1)
    with pytest.raises(ValueError, match="grads"):
        opt.update(params, {"W": np.zeros((2, 3))}, state, 0.1)
    with pytest.raises(ValueError, match="state"):
        opt.update(params, {"W": np.zeros((2, 2))}, make_optimizer("sgd").init(params), 0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.update(params, {"W": np.zeros((2, 2))}, state, -1.0)
