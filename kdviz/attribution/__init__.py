"""Attribution: one entry point for captum methods (:mod:`~kdviz.attribution.engine`), their parameter table
(:mod:`~kdviz.attribution.methods`), IG step control (:mod:`~kdviz.attribution.ig_steps`), Vision Transformer
methods (:mod:`~kdviz.attribution.vision_transformer`), numeric precision (:mod:`~kdviz.attribution.precision`)
and explanations over feature groups (:mod:`~kdviz.attribution.groups`)."""
