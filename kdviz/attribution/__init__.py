"""Attribution: the method registry (:mod:`~kdviz.attribution.registry`) and the built-in methods registered into
it (:mod:`~kdviz.attribution.methods`), the entry points ``attribute`` / ``attribute_text`` and their result types
(:mod:`~kdviz.attribution.engine`), how methods are run (:mod:`~kdviz.attribution.runtime`,
:mod:`~kdviz.attribution.locks`), words of texts (:mod:`~kdviz.attribution.text`), IG step control
(:mod:`~kdviz.attribution.ig_steps`), Vision Transformer maps (:mod:`~kdviz.attribution.vision_transformer`),
numeric precision (:mod:`~kdviz.attribution.precision`), explanations over feature groups
(:mod:`~kdviz.attribution.groups`) and the disk cache (:mod:`~kdviz.attribution.cache`)."""
