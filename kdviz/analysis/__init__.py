"""What the numbers mean: parts (:mod:`~kdviz.analysis.parts`), alignment metrics (:mod:`~kdviz.analysis.metrics`),
teacher vs students on a batch (:mod:`~kdviz.analysis.compare`), the random-weights null
(:mod:`~kdviz.analysis.nulls`), the teacher randomisation test (:mod:`~kdviz.analysis.randomisation`), which
setting to trust (:mod:`~kdviz.analysis.sanity`), aggregation over inputs and seeds
(:mod:`~kdviz.analysis.aggregate`) and superfeatures (:mod:`~kdviz.analysis.superfeatures`)."""
