"""Long-range-dependency benchmarks and character-level language modelling.

    task = rnnlab.tasks.get("adding", T=100)
    X, Y, mask = task.batch(np.random.default_rng(0), batch_size=32)

Importing the task modules registers them with `get` and `names`.
"""

from rnnlab.tasks.adding import AddingTask
from rnnlab.tasks.base import Batch, Task, get, names
from rnnlab.tasks.charlm import CharLMTask
from rnnlab.tasks.copy import CopyTask
from rnnlab.tasks.temporal_order import TemporalOrderTask

__all__ = [
    "AddingTask",
    "Batch",
    "CharLMTask",
    "CopyTask",
    "Task",
    "TemporalOrderTask",
    "get",
    "names",
]
