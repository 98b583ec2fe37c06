"""Check the hand-written derivatives of any function: ``python -m verifiers.check FILE.py`` and
:func:`check_function`.

A check file (or the Python API) gives a function ``forward(*inputs, xp)`` written once against
the array API, how to draw its inputs, and any of four hand derivatives: a ``vjp`` (reverse mode),
a ``jvp`` (forward mode), a ``gradient`` and an ``hvp`` (scalar outputs). Every engine that can
differentiate a function (:data:`verifiers.engines.ENGINES`, the ``functions`` column) computes
the same derivatives from ``forward``, and the verdict rule of :mod:`verifiers.judge` decides.

The modules, in the order a check goes through them:

- :mod:`~verifiers.functions.problem`: what is checked (the function, its inputs, the hand
  derivatives, taps), loaded from a file or built from callables; every call into user code;
- :mod:`~verifiers.functions.run`: the check points, and every engine's derivatives there, the
  float32/float64 twin that measures rounding, the Taylor remainders; nothing is judged;
- :mod:`~verifiers.functions.judge`: tolerances, the verdict per derivative and array, the first
  wrong step, detection power, the Taylor slope; computes nothing;
- :mod:`~verifiers.functions.diagnosis`: how a wrong derivative is wrong, from values;
- :mod:`~verifiers.functions.report`: the text and the JSON, readers of the results only;
- :mod:`~verifiers.functions.steps`: a model's hand backprop (``--manual`` for mlp) located to
  its first wrong step, as a function check of the model's tapped loss.

:mod:`verifiers.check` is the command line; :mod:`~verifiers.functions.api` the Python API.
"""

from verifiers.functions.api import check_function
from verifiers.functions.problem import CheckFileError, Derivative, HandDerivativeError, Problem
from verifiers.functions.results import FunctionReport

__all__ = [
    "CheckFileError",
    "Derivative",
    "FunctionReport",
    "HandDerivativeError",
    "Problem",
    "check_function",
]
