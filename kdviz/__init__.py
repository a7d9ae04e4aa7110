"""kdviz — see how knowledge distillation changes where models look.

The library under the dashboard, in layers (each imports only those below it; ``.importlinter`` checks it):

- ``kdviz.ui`` (the only code that imports streamlit) and ``kdviz.cli`` (one module per subcommand);
- ``kdviz.evaluation``: dataset-level evaluation of a zoo, single process or on a Ray cluster;
- ``kdviz.report``: the reference study's views and findings, Plotly figure builders;
- ``kdviz.analysis``: parts, alignment metrics, teacher-vs-student comparison, the random-weights null,
  randomisation tests, aggregation, superfeatures;
- ``kdviz.training``: the distillation losses (KD, SD, KED), the training loop, zoo building;
- ``kdviz.io``: safe checkpoint loading, uploads (zip, images, series), datasets, zoo manifests;
- ``kdviz.attribution``: one entry point for captum methods, IG steps, ViT methods, precision;
- ``kdviz.models``: the architecture registry and its families, architecture guessing.

The public API below is imported lazily (PEP 562), so ``import kdviz`` stays light::

    zoo = kdviz.load_zoo("assets/zoo/mnist")
    cmp = kdviz.compare_models(zoo.teacher, zoo.students, x, method="grad_cam", parts="slic:50")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module to import it from (a registry's API from its package, which loads the built-in families)
_PUBLIC_API = {
    "AttributionMethod": "kdviz.attribution.methods",
    "ParamSpec": "kdviz.attribution.methods",
    "CompareOptions": "kdviz.analysis.compare",
    "attribute": "kdviz.attribution.engine",
    "compare_models": "kdviz.analysis.compare",
    "create_model": "kdviz.models",
    "evaluate_zoo": "kdviz.evaluation.evaluate",
    "get_method": "kdviz.attribution.methods",
    "load_checkpoint": "kdviz.io.checkpoints",
    "load_dataset": "kdviz.io.builtin_datasets",
    "load_zoo": "kdviz.io.zoo.manifest",
    "register_method": "kdviz.attribution.methods",
}

__all__ = ["__version__", *sorted(_PUBLIC_API)]


def __getattr__(name: str) -> Any:
    """Import the public API on first use (``kdviz.load_zoo`` imports ``kdviz.io.zoo.manifest`` then)."""
    module = _PUBLIC_API.get(name)
    if module is None:
        raise AttributeError(f"module 'kdviz' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC_API))
