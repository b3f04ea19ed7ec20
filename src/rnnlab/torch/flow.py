"""gradient_flow(model, batch, loss_fn): the engine's Diagnosis for a PyTorch model.

def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())

d = rnnlab.torch.gradient_flow(model, (x, y), loss_fn, dependency_length=100)
print(d)                  # verdict, lag profile, spectra, evidence, remedies
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rnnlab.diagnostics import Diagnosis, DiagnosisOptions
from rnnlab.diagnostics.options import options_from
from rnnlab.torch.diagnosis import diagnosis
from rnnlab.torch.measure import trace
from rnnlab.torch.twin import recurrent_modules


def gradient_flow(
    model: Any,
    batch: Any,
    loss_fn: Callable[[Any, Any], Any],
    *,
    module: str | None = None,
    output_step: int | None = None,
    grad_norms: Any = None,
    nonfinite_steps: int | None = None,
    options: DiagnosisOptions | None = None,
    **keywords: Any,
) -> Diagnosis:
    """Diagnose the gradient flow through time of one recurrent module of `model`.

    model: any nn.Module holding an nn.RNN, nn.LSTM or nn.GRU (or being one). `module` names
    it (a path of model.named_modules()); it may be left out when there is only one.
    loss_fn(model, batch) -> scalar tensor: the user's own loss, run once with that module
    unrolled step by step (twin.py). output_step: the step t whose loss L_t the lag profile
    follows back (default T). grad_norms, nonfinite_steps and options (or its fields as
    keywords: dependency_length, jacobian_sequences, rng, run, thresholds) are as for
    rnnlab.diagnose. The module may take a PackedSequence: steps past a sequence's end are
    masked out, and the lag profile and Jacobian products of step t use the sequences that
    reach t (diagnosis.py).

    The model's parameters, their .grad, its buffers and the RNG streams are as before.
    """
    opts = options_from(options, keywords)
    found = recurrent_modules(model)
    if module is None:
        if len(found) > 1:
            raise ValueError(
                f"module: got None, but the model holds {len(found)} recurrent modules "
                f"({', '.join(map(repr, found))}); expected the name of the one to diagnose"
            )
        module = next(iter(found))
    traces = trace(model, batch, loss_fn, modules=[module], output_step=output_step)
    return diagnosis(traces[module], opts, grad_norms=grad_norms, nonfinite_steps=nonfinite_steps)
