"""Learning-rate schedules against torch.optim.lr_scheduler, and their warm-up."""

from __future__ import annotations

import math
import warnings

import pytest

from rnnlab.train import Constant, Cosine, StepDecay, Warmup, make_schedule

from conftest import need

torch = need("torch")  # under CI=1 a failure, not a skip

LR = 0.3
STEPS = 120


def _torch_lrs(make_scheduler, steps: int = STEPS) -> list[float]:
    """The lr torch uses for updates 0 … steps−1."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR)
    sched = make_scheduler(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about scheduler steps without a loss
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return lrs


def _assert_close(ours: list[float], theirs: list[float]) -> None:
    assert len(ours) == len(theirs)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), f"step {t}: {a} != {b}"


def test_constant():
    s = make_schedule("constant", LR)
    assert s == Constant(LR)
    assert {s.lr_at(t) for t in range(1000)} == {LR}


def test_step_matches_torch_steplr():
    s = make_schedule("step", LR, step_size=7, gamma=0.5)
    assert s == StepDecay(LR, 7, 0.5)
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5))
    _assert_close([s.lr_at(t) for t in range(STEPS)], theirs)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_matches_torch_cosineannealinglr(min_lr):
    s = make_schedule("cosine", LR, total_steps=STEPS, min_lr=min_lr)
    assert s == Cosine(LR, STEPS, min_lr)
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=min_lr),
        STEPS + 1,
    )
    _assert_close([s.lr_at(t) for t in range(STEPS + 1)], theirs)
    assert s.lr_at(0) == LR
    # torch swings back up after T_max; ours stays at the floor
    assert s.lr_at(STEPS) == s.lr_at(STEPS + 1) == s.lr_at(10 * STEPS) == pytest.approx(min_lr)


@pytest.mark.parametrize("start", [None, 0.25])
def test_warmup_cosine_matches_torch_sequentiallr(start):
    w, total = 10, STEPS
    s = make_schedule("cosine", LR, total_steps=total, warmup_steps=w, warmup_start_factor=start)
    assert s == Warmup(Cosine(LR, total - w, 0.0), w, start)
    factor = 1 / (w + 1) if start is None else start

    def torch_sched(o):
        lin = torch.optim.lr_scheduler.LinearLR(o, start_factor=factor, total_iters=w)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total - w)
        return torch.optim.lr_scheduler.SequentialLR(o, [lin, cos], milestones=[w])

    _assert_close([s.lr_at(t) for t in range(total)], _torch_lrs(torch_sched, total))
    assert s.lr_at(total) == pytest.approx(0.0, abs=1e-15)


def test_default_warmup_is_nanogpt_style():
    s = make_schedule("constant", 1.0, warmup_steps=4)
    assert [s.lr_at(t) for t in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


def test_warmup_then_step_decay_starts_afresh():
    s = make_schedule("step", 1.0, step_size=3, gamma=0.5, warmup_steps=2, warmup_start_factor=0)
    assert [s.lr_at(t) for t in range(9)] == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    )


def test_schedules_are_pure():
    s = make_schedule("cosine", LR, total_steps=50, warmup_steps=5)
    first = [s.lr_at(t) for t in range(60)]
    assert [s.lr_at(t) for t in reversed(range(60))] == first[::-1]
    assert all(math.isfinite(x) and x >= 0 for x in first)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"name": "linear", "lr": 0.1}, "schedule"),
        ({"name": "constant", "lr": -0.1}, "lr"),
        ({"name": "constant", "lr": float("nan")}, "lr"),
        ({"name": "step", "lr": 0.1}, "step_size"),
        ({"name": "step", "lr": 0.1, "step_size": 0}, "step_size"),
        ({"name": "step", "lr": 0.1, "step_size": 2, "gamma": 1.5}, "gamma"),
        ({"name": "cosine", "lr": 0.1}, "total_steps"),
        ({"name": "cosine", "lr": 0.1, "total_steps": 5, "warmup_steps": 5}, "total_steps"),
        ({"name": "cosine", "lr": 0.1, "total_steps": 5, "min_lr": 0.2}, "min_lr"),
        ({"name": "constant", "lr": 0.1, "warmup_steps": -1}, "warmup_steps"),
        ({"name": "constant", "lr": 0.1, "warmup_steps": 2.5}, "warmup_steps"),
        ({"name": "constant", "lr": 0.1, "warmup_steps": 3, "warmup_start_factor": 2}, "warmup"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word) as e:
        make_schedule(**kwargs)
    assert ": got " in str(e.value) and "; expected " in str(e.value) and "\n" not in str(e.value)
