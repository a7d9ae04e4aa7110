"""One text student distilled from a Hugging Face teacher folder of the text zoo's kind (``kdviz distill`` for
text): the teacher's cached logits and rationale words are reused when they ship next to it.

The student is a BERT classifier (``bert-L2-H256``; rationale = a token-tagging head) or a T5 / GPT-2 language
model (``t5-L2-H128``, ``gpt2-L2-H128``) trained with distilling step-by-step; see :mod:`kdviz.training.text_zoo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdviz.io.hf_text import load_hf_text
from kdviz.models.hf_text import parse_text_arch
from kdviz.training.rationale import TeacherCache
from kdviz.training.text_zoo import (
    StudentRun,
    TextZooConfig,
    compute_teacher_cache,
    distill_text_student,
    load_text_data,
    subset_text_data,
)
from kdviz.vocab import TrainingMethod

__all__ = ["DEFAULT_RATIONALE_BETA", "TextDistillJob", "distill_from_teacher"]

DEFAULT_RATIONALE_BETA = 0.5  # weight β of the rationale loss when none is given


@dataclass(frozen=True)
class TextDistillJob:
    """One text student: its teacher folder, architecture, recipe and output folder."""

    teacher: Path
    arch: str
    out: Path
    alpha: float = 1.0
    method: TrainingMethod = TrainingMethod.KD  # KD (CE at α = 1) or RATIONALE
    beta: float | None = None  # rationale weight (None: DEFAULT_RATIONALE_BETA for the rationale recipe)
    temperature: float = 4.0
    seed: int = 0
    epochs: int | None = None  # None: the text zoo recipe's
    lr: float | None = None  # None: the text zoo recipe's
    max_train: int | None = None  # first N training snippets only (quick runs)
    max_test: int | None = None

    def run(self) -> StudentRun:
        """The student as the text zoo names it (method ``ce`` at α = 1, else ``kd``, or ``rationale``)."""
        rationale = self.method == TrainingMethod.RATIONALE
        method = TrainingMethod.RATIONALE if rationale else (TrainingMethod.CE if self.alpha == 1.0 else TrainingMethod.KD)
        beta = (DEFAULT_RATIONALE_BETA if self.beta is None else self.beta) if rationale else (self.beta or 0.0)
        return StudentRun(parse_text_arch(self.arch), self.alpha, method, beta=beta)


def _teacher_cache(job: TextDistillJob, teacher: object, data: object, config: TextZooConfig, work: Path) -> Path:
    """The teacher's logits and rationale words: the file shipped next to the teacher, else computed once."""
    shipped = Path(job.teacher).parent / "teacher_rationales.npz"
    cache_path = shipped if shipped.is_file() else work / "teacher_rationales.npz"
    if not cache_path.is_file():
        compute_teacher_cache(teacher.model, data, k=config.k).save(cache_path)  # type: ignore[attr-defined, arg-type]
    return cache_path


def distill_from_teacher(job: TextDistillJob) -> dict:
    """Train ``job``'s student into ``job.out`` (work files beside it, so a run resumes); its summary as a dict.

    Returns
    -------
    ``id, arch, alpha, method, beta, test_accuracy, train_seconds, out, rationales`` (the teacher cache's path)
    """
    run = job.run()
    teacher = load_hf_text(job.teacher)
    defaults = TextZooConfig()
    config = TextZooConfig(student_seed=job.seed, temperature=job.temperature,
                           student_epochs=job.epochs or defaults.student_epochs,
                           student_lr=job.lr or defaults.student_lr)
    out = Path(job.out)
    work = out.parent / f".{out.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    data = load_text_data(teacher.tokenizer, seed=config.seed, n_test=config.n_test, max_length=config.max_length)
    cache_path = _teacher_cache(job, teacher, data, config, work)
    cache = TeacherCache.load(cache_path)
    if job.max_train or job.max_test:
        data, cache = subset_text_data(data, cache, n_train=job.max_train, n_test=job.max_test)
    info = distill_text_student(run, data, cache, out, work, config=config)
    return {"id": run.id, "arch": run.spec.arch, "alpha": run.alpha, "method": run.method, "beta": run.beta,
            "test_accuracy": round(info["accuracy"], 4), "train_seconds": round(info["seconds"], 1),
            "out": str(out), "rationales": str(cache_path)}
