"""The built-in attribution methods, one module per family, each method registered where it is defined.

Importing this package imports every family (each registers its methods), then re-exports the registry's API,
so ``from kdviz.attribution.methods import get_method`` finds every built-in method. Families, in the order the
methods are listed: :mod:`~kdviz.attribution.methods.gradient`, :mod:`~kdviz.attribution.methods.perturbation`,
:mod:`~kdviz.attribution.methods.cam` (images and series) and :mod:`~kdviz.attribution.methods.text` (texts).
"""

# Each family registers its methods on import; the import order is the order the methods are listed in.
from kdviz.attribution.methods import gradient  # noqa: F401  (registers)

# isort: split
from kdviz.attribution.methods import perturbation  # noqa: F401  (registers)

# isort: split
from kdviz.attribution.methods import cam  # noqa: F401  (registers)

# isort: split
from kdviz.attribution.methods import text  # noqa: F401  (registers)

# isort: split
from kdviz.attribution.registry import (
    AttributionMethod,
    ParamSpec,
    TokenScores,
    get_method,
    method_label,
    method_names,
    register_method,
    unavailable_methods,
    unregister_method,
)

__all__ = [
    "AttributionMethod",
    "ParamSpec",
    "TokenScores",
    "get_method",
    "method_label",
    "method_names",
    "register_method",
    "unavailable_methods",
    "unregister_method",
]
