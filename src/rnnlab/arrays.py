"""The array types every layer names, in one place: this module imports only numpy, so the
tasks (which depend on nothing) use it as the engine does.

    Array   a numpy array; shapes are in each docstring, (T, B, H) and so on
    Params  named arrays: a model's parameters, their gradients, an optimiser's state
            (DESIGN convention 4: plain dicts of arrays with identical keys)
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
Params = dict[str, Array]
