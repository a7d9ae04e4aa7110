"""Dataset-level evaluation of a zoo into a DataFrame, resumable: one pipeline (:mod:`~kdviz.evaluation.pipeline`)
with a plug-in per modality (:mod:`~kdviz.evaluation.arrays`, :mod:`~kdviz.evaluation.text`), in a single process
or on a Ray cluster (:mod:`~kdviz.evaluation.distributed`); :mod:`~kdviz.evaluation.evaluate` is the entry point."""
