"""Distillation recipes: every loss in one place (:mod:`~kdviz.training.losses`: KD, saliency distillation,
KED), one seeded training loop (:mod:`~kdviz.training.loop`) and the demo-zoo builder
(:mod:`~kdviz.training.zoo_build`)."""
