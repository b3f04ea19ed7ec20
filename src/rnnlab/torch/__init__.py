"""The PyTorch bridge. torch is imported only inside this package (extra `rnnlab[torch]`).

from_torch(module, readout) / to_torch(model)     exact weight conversion (convert.py)
gradient_flow(model, batch, loss_fn) -> Diagnosis  a model's nn.RNN/LSTM/GRU, unrolled
trace(model, batch, loss_fn) -> {name: ModuleTrace}  the raw ∂L/∂h_k and ∂L_t/∂h_k
with watch() as w: h = w.step(h); w.diagnose(loss)  a hand-written loop
cell("mingru", module, U="lin.weight", b="lin.bias")  your own cell module, for watch(cells=)
GradientFlowMonitor(model, every=N, loss_fn=...)   a diagnosis every N training steps
"""

from rnnlab.torch.cells import TorchCell, cell
from rnnlab.torch.convert import from_torch, to_torch
from rnnlab.torch.flow import gradient_flow
from rnnlab.torch.measure import ModuleTrace, trace
from rnnlab.torch.monitor import GradientFlowMonitor
from rnnlab.torch.watch import Watch, watch

__all__ = [
    "GradientFlowMonitor",
    "ModuleTrace",
    "TorchCell",
    "Watch",
    "cell",
    "from_torch",
    "gradient_flow",
    "to_torch",
    "trace",
    "watch",
]
