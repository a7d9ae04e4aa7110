"""Zoos on disk: the manifest and its loader (:mod:`~kdviz.io.zoo.manifest`), a zoo written from loaded models
(:mod:`~kdviz.io.zoo.export`), and a zoo discovered from a folder of a lab's checkpoints
(:mod:`~kdviz.io.zoo.discover`, ``kdviz zoo init``)."""
