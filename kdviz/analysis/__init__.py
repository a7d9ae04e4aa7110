"""What the numbers mean: alignment metrics (:mod:`~kdviz.analysis.metrics`), teacher vs students on a batch for
every modality (:mod:`~kdviz.analysis.compare`), the random-weights null (:mod:`~kdviz.analysis.nulls`), the
teacher randomisation test (:mod:`~kdviz.analysis.randomisation`), which setting to trust
(:mod:`~kdviz.analysis.sanity`) and aggregation over inputs and seeds (:mod:`~kdviz.analysis.aggregate`)."""
