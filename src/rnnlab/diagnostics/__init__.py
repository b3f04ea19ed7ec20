"""Diagnostics: how gradients vanish or explode through time, why, and what to do about it.

    d = diagnose(model, X, Y, mask=mask, loss="mse", dependency_length=100)
    print(d)            # verdict, lag profile, spectra, evidence, remedies (text.py)
    d                   # in a notebook: verdict and lag profile (html.py, figures.py)
    d.to_dict()         # JSON-safe, as a history and the results store keep it
    Diagnosis.from_dict(record)     # and back; Snapshot(step, d) is one recorded in training

DiagnosisOptions holds the options (dependency_length, jacobian_sequences, rng, run,
thresholds) that diagnose and every other entry point take as `options=` or as keywords.

The pieces are usable alone on a trace from model.loss_and_grads: gradient_flow (δ norms,
per-step weight contributions, lag profile and its summary numbers), jacobian_products,
weight_spectra, activation_stats, history_stats and judge. They measure and change nothing.
Measurements made elsewhere (the PyTorch bridge) become a Diagnosis through the per-layer
helpers profile_from_norms, summarise_flow, layer_products, block_spectra,
layer_activation_stats, and assemble.
DiagnosisCallback diagnoses a probe batch every N training steps.
"""

from rnnlab.diagnostics.activations import (
    ActivationStats,
    activation_stats,
    layer_activation_stats,
)
from rnnlab.diagnostics.callback import DiagnosisCallback
from rnnlab.diagnostics.diagnose import Diagnosis, assemble, diagnose
from rnnlab.diagnostics.flow import (
    GradientFlow,
    LagProfile,
    decay_factor,
    delta_norms,
    gradient_flow,
    horizon,
    lag_profile,
    profile_from_norms,
    summarise_flow,
    weight_contributions,
)
from rnnlab.diagnostics.jacobian import (
    JacobianProducts,
    jacobian_products,
    layer_products,
    pascanu_bound,
    product_log_norms,
)
from rnnlab.diagnostics.options import DiagnosisOptions
from rnnlab.diagnostics.record import Snapshot
from rnnlab.diagnostics.spectra import BlockSpectrum, block_spectra, weight_spectra
from rnnlab.diagnostics.verdict import (
    HistoryStats,
    Learning,
    Remedy,
    RunInfo,
    Thresholds,
    Verdict,
    history_stats,
    judge,
    remedies,
)

__all__ = [
    "ActivationStats",
    "BlockSpectrum",
    "Diagnosis",
    "DiagnosisCallback",
    "DiagnosisOptions",
    "GradientFlow",
    "HistoryStats",
    "JacobianProducts",
    "LagProfile",
    "Learning",
    "Remedy",
    "RunInfo",
    "Snapshot",
    "Thresholds",
    "Verdict",
    "activation_stats",
    "assemble",
    "block_spectra",
    "decay_factor",
    "delta_norms",
    "diagnose",
    "gradient_flow",
    "history_stats",
    "horizon",
    "jacobian_products",
    "judge",
    "lag_profile",
    "layer_activation_stats",
    "layer_products",
    "pascanu_bound",
    "product_log_norms",
    "profile_from_norms",
    "remedies",
    "summarise_flow",
    "weight_contributions",
    "weight_spectra",
]
