"""Architectures: one registry and factory (:mod:`~kdviz.models.registry`), the families that register
themselves into it, and recognising an architecture from a checkpoint's weights (:mod:`~kdviz.models.arch_guess`,
with its generated :mod:`~kdviz.models.key_index`).

Importing this package imports every family (each registers itself), then re-exports the registry's API,
so ``from kdviz.models import create_model`` builds any registered architecture.
"""

from kdviz.models import cifar_kd, cifar_resnet, ked_family, timeseries, timm_family, torchvision_family  # noqa: F401  (register)
from kdviz.models.registry import (
    OPTIONAL_KEY_SUFFIXES,
    ModelInfo,
    UnknownModelError,
    create_model,
    infer_dims_from_state_dict,
    key_fingerprint,
    list_models,
    model_info,
    register_model,
    registry_version,
    seeded_model,
    state_dict_signature,
)
from kdviz.models.timeseries import width_name

__all__ = [
    "OPTIONAL_KEY_SUFFIXES",
    "ModelInfo",
    "UnknownModelError",
    "create_model",
    "infer_dims_from_state_dict",
    "key_fingerprint",
    "list_models",
    "model_info",
    "register_model",
    "registry_version",
    "seeded_model",
    "state_dict_signature",
    "width_name",
]
