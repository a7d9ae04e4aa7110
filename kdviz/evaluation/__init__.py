"""Dataset-level evaluation of a zoo into a DataFrame, resumable: one batch (:mod:`~kdviz.evaluation.batch`),
a single process (:mod:`~kdviz.evaluation.evaluate`) or a Ray cluster (:mod:`~kdviz.evaluation.distributed`)."""
