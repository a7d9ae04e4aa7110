"""Modalities as plug-ins: how a model's inputs are read, split into parts, turned into part vectors, and how a
part is removed. Parts (:mod:`~kdviz.modalities.parts`: SLIC, grid, time segments) and superfeatures
(:mod:`~kdviz.modalities.superfeatures`) live here so that every layer above (training, analysis) shares them."""
