"""Reading and writing what users bring, refusing what cannot be read safely: checkpoints
(:mod:`~kdviz.io.checkpoints`, ``torch.load(weights_only=True)`` only), zip archives (:mod:`~kdviz.io.safezip`),
images (:mod:`~kdviz.io.images`), series (:mod:`~kdviz.io.series`), server paths (:mod:`~kdviz.io.paths`),
size limits and scratch folders (:mod:`~kdviz.io.untrusted`), input presets (:mod:`~kdviz.io.presets`),
built-in offline datasets (:mod:`~kdviz.io.builtin_datasets`), the user's own data files
(:mod:`~kdviz.io.user_datasets`) and zoos (:mod:`~kdviz.io.zoo`)."""
