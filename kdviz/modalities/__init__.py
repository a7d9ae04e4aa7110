"""Modalities as plug-ins: how a model's inputs are read, split into parts, turned into part vectors, and how a
part is removed (:mod:`~kdviz.modalities.base`). Importing this package registers the built-in image, series and
text plug-ins. Parts (:mod:`~kdviz.modalities.parts`: SLIC, grid, time segments, words) and superfeatures
(:mod:`~kdviz.modalities.superfeatures`) live here so that every layer above (training, analysis) shares them."""

from kdviz.modalities import image, series, text  # noqa: F401 - importing a plug-in module registers it
from kdviz.modalities.base import get_modality, infer_modality, register_modality, registered_modalities

__all__ = ["get_modality", "infer_modality", "register_modality", "registered_modalities"]
