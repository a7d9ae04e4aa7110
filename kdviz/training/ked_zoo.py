"""A KED zoo as the paper builds it (arXiv 2310.02572): plain and explaining teachers, CE / KD / KED students.

:func:`build_ked_zoo` runs, in order (each step skipped when its files exist, so an interrupted build resumes):

1. the plain teacher ``mlp_h500`` (CE, the authors' teacher; batch 500);
2. its superfeatures: the input Hessian of ``Σ_c log p_c`` averaged over 1,000 training inputs, W = |H| + |H|ᵀ,
   Louvain stepped to exactly M communities (:func:`kdviz.modalities.superfeatures.build_paper_superfeatures`),
   and the class prior (the plain teacher's mean prediction over the training set);
3. the explaining teacher ``ked_mlp_m<M>_h<H>`` with as many parameters as the plain teacher (CE);
4. per seed: a plain student ``mlp_h<W>`` with CE, one with KD from the plain teacher (λ = 0.7, T = 10), and an
   explaining student of equal parameter count with KED from the explaining teacher (λ = μ = 0.7, T = τ = 10).

``zoo.json``'s teacher is the explaining teacher (the one whose explanations students are compared with); the
plain teacher is listed as a student entry ``plain_teacher_mlp_h500`` (method ``ce``) so that it is loadable
and shown, and the KD students' command names it as their teacher. Weights are float16; each recorded test
accuracy is measured after reloading the float16 file. ``kdviz ked-zoo`` is its command line.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdviz.io.builtin_datasets import Dataset, load_dataset
from kdviz.io.checkpoints import load_checkpoint
from kdviz.io.zoo.manifest import MANIFEST, ModelEntry, ZooManifest, parse_model, save_weights
from kdviz.modalities.superfeatures import build_paper_superfeatures, save_superfeatures
from kdviz.models import seeded_model
from kdviz.models.ked_family import explaining_mlp_name
from kdviz.training.explaining import PaperMethod, PaperRecipe, class_log_prior, train_paper
from kdviz.training.inference import eval_logits
from kdviz.vocab import Modality, TrainingMethod

__all__ = ["KED_ZOOS", "KedZooPlan", "build_ked_zoo"]

Log = Callable[[str], None] | None  # where progress lines go (None: nowhere)


@dataclass(frozen=True)
class KedZooPlan:
    """What one KED zoo holds and how long each model trains."""

    name: str
    data: str
    student_width: int  # the authors: 60 on Fashion-MNIST, 20 on MNIST
    teacher_width: int = 500
    m: int = 4  # the authors' notebooks use M = 4 on MNIST and Fashion-MNIST
    seeds: tuple[int, ...] = (1, 2, 3)
    # The authors train 100 epochs. The shipped fashion-mnist-ked used 15 (plain teacher), 10 (explaining teacher)
    # and 20 (students; accuracy within ~1 point over the last 5): each model's zoo.json command names its epochs.
    teacher_epochs: int = 20
    student_epochs: int = 25
    teacher_batch: int = 500
    student_batch: int = 100
    hessian_inputs: int = 1000
    teacher_seed: int = 0
    description: str = ""


KED_ZOOS: dict[str, KedZooPlan] = {
    "fashion-mnist-ked": KedZooPlan(
        name="fashion-mnist-ked", data="fashion-mnist", student_width=60,
        description="KED as in arXiv 2310.02572 / GitHub scbwn/ked on Fashion-MNIST (60,000 / 10,000): plain "
                    "MLP teacher 784-500-500-10, explaining teacher with M = 4 Hessian–Louvain superfeature "
                    "branches, students 784-60-60-10 (CE, KD) and explaining students of equal parameter count "
                    "(KED); λ = μ = 0.7, T = τ = 10, Adam 1e-3 as the authors' MLP notebooks."),
    "mnist-ked": KedZooPlan(
        name="mnist-ked", data="mnist", student_width=20,
        description="KED as in arXiv 2310.02572 / GitHub scbwn/ked on kdviz's 5,000 bundled MNIST digits "
                    "(4,000 / 1,000): plain MLP teacher 784-500-500-10, explaining teacher with M = 4 "
                    "superfeature branches, students 784-20-20-10 (the authors' MNIST student; CE, KD) and "
                    "explaining students of equal parameter count (KED); λ = μ = 0.7, T = τ = 10."),
}


def _build_command(plan: KedZooPlan, out: Path, model_id: str) -> str:
    return shlex.join(["kdviz", "ked-zoo", "--zoo", plan.name, "--out", str(out), "--teacher-epochs",
                       str(plan.teacher_epochs), "--student-epochs", str(plan.student_epochs), "--seeds",
                       *map(str, plan.seeds), "--only", model_id])


def _load(path: Path, arch: str, ds: Dataset) -> nn.Module:
    """A zoo checkpoint as the float32 eval-mode module it was saved from."""
    return load_checkpoint(path, arch=arch, num_classes=ds.num_classes, in_channels=ds.in_channels).module.float().eval()


def _accuracy(model: nn.Module, ds: Dataset) -> float:
    logits = eval_logits(model, torch.from_numpy(ds.model_input(ds.x_test)))
    return float((logits.argmax(1).numpy() == ds.y_test).mean())


def _record_path(out: Path, model_id: str) -> Path:
    return out / "records" / f"{model_id}.json"


@dataclass(frozen=True)
class _Job:
    """One model of the zoo: how it is trained and from which teacher."""

    model_id: str
    arch: str
    role: str
    method: PaperMethod
    seed: int
    teacher: nn.Module | None = None
    teacher_file: str | None = None
    superfeatures: tuple[np.ndarray, np.ndarray] | None = None  # (labels, class log-prior) of explaining models
    force: bool = False  # retrain even when its record exists


def _entry(plan: KedZooPlan, out: Path, ds: Dataset, job: _Job, recipe: PaperRecipe, seconds: float,
           curve: tuple[float, ...]) -> ModelEntry:
    """The zoo.json entry of a trained model, measured after reloading its float16 file."""
    path = out / f"{job.model_id}.safetensors"
    shipped = load_checkpoint(path, arch=job.arch, num_classes=ds.num_classes, in_channels=ds.in_channels)
    method = job.method
    return ModelEntry(
        id=job.model_id, role=job.role, arch=job.arch,  # type: ignore[arg-type]
        alpha=round(1.0 - recipe.lam, 6) if method != TrainingMethod.CE else 1.0,
        temperature=recipe.temperature, method=method, beta=0.0,
        tau=recipe.tau if method == TrainingMethod.KED else None, checkpoint=path.name, params=shipped.params,
        test_accuracy=round(_accuracy(shipped.module.float().eval(), ds), 6), train_seconds=seconds,
        command=_build_command(plan, out, job.model_id) + (f"  # teacher: {job.teacher_file}" if job.teacher_file else ""),
        seed=job.seed, sha256=shipped.sha256, parts=plan.m if method == TrainingMethod.KED else None,
        epochs=recipe.epochs, accuracy_curve=tuple(round(a, 4) for a in curve),
        ked_mu=recipe.mu if method == TrainingMethod.KED else None,
        ked_lambda=recipe.lam if method == TrainingMethod.KED else None,
        superfeatures=f"superfeatures_M{plan.m}.npy" if job.arch.startswith("ked_") else None,
    )


def _train_one(plan: KedZooPlan, out: Path, ds: Dataset, job: _Job, log: Log) -> ModelEntry:
    """Train, save float16, reload, measure; the record is written next to the zoo (resumable)."""
    model_id, arch, method, seed = job.model_id, job.arch, job.method, job.seed
    record = _record_path(out, model_id)
    if record.is_file() and (out / f"{model_id}.safetensors").is_file() and not job.force:
        return parse_model(json.loads(record.read_text(encoding="utf-8")), str(record))
    is_teacher = model_id.startswith(("teacher", "plain_teacher"))
    recipe = PaperRecipe(epochs=plan.teacher_epochs if is_teacher else plan.student_epochs,
                         batch_size=plan.teacher_batch if is_teacher else plan.student_batch, seed=seed)
    model = seeded_model(arch, seed=seed, num_classes=ds.num_classes, in_channels=ds.in_channels)
    if job.superfeatures is not None:
        labels, log_prior = job.superfeatures
        model.set_superfeatures(labels, log_prior, generator=torch.Generator().manual_seed(seed))  # type: ignore[operator]
    if log is not None:
        log(f"[ked-zoo] {model_id}: {arch}, {method}, seed {seed}, {recipe.epochs} epochs")
    result = train_paper(model, ds, recipe, method=method, teacher=job.teacher, log=log is not None)
    save_weights(model, out / f"{model_id}.safetensors",
                 metadata={"arch": arch, "num_classes": str(ds.num_classes), "in_channels": str(ds.in_channels),
                           "dtype": "float16", "id": model_id})
    entry = _entry(plan, out, ds, job, recipe, result.seconds, result.accuracy_curve)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(asdict(entry), indent=2) + "\n", encoding="utf-8")
    return entry


def _superfeatures(plan: KedZooPlan, out: Path, ds: Dataset, plain: nn.Module, plain_id: str, *, rebuild: bool,
                   log: Log) -> tuple[np.ndarray, np.ndarray]:
    """The plain teacher's M superfeatures and class log-prior, built once and stored next to the zoo."""
    sf_file = out / f"superfeatures_M{plan.m}.npy"
    prior_file = out / "class_log_prior.npy"
    if not sf_file.is_file() or not prior_file.is_file() or rebuild:
        rng = np.random.default_rng(plan.teacher_seed)
        pick = np.sort(rng.choice(len(ds.x_train), size=min(plan.hessian_inputs, len(ds.x_train)), replace=False))
        if log is not None:
            log(f"[ked-zoo] superfeatures: Hessian over {len(pick)} training inputs, Louvain to M = {plan.m}")
        sf = build_paper_superfeatures(plain, ds.model_input(ds.x_train[pick]), m=plan.m)
        save_superfeatures(sf, out, teacher=plain_id)
        x_train = torch.from_numpy(ds.model_input(ds.x_train))
        np.save(prior_file, class_log_prior(plain, x_train), allow_pickle=False)
        if log is not None:
            log(f"[ked-zoo] superfeatures sizes {sf.sizes}, resolution {sf.resolution}, {sf.seconds} s")
    return np.load(sf_file, allow_pickle=False), np.load(prior_file, allow_pickle=False)


@dataclass(frozen=True)
class _Teacher:
    """A trained teacher: its module and its checkpoint's file name."""

    module: nn.Module
    file: str


def _student_jobs(plan: KedZooPlan, ds: Dataset, seed: int, plain: _Teacher, explaining: _Teacher,
                  superfeatures: tuple[np.ndarray, np.ndarray]) -> list[_Job]:
    """One seed's CE and KD students (plain MLPs) and KED student (explaining MLP of equal parameter count)."""
    d = int(np.prod(ds.input_shape))
    student_arch = f"mlp_h{plan.student_width}"
    ked_arch = explaining_mlp_name(plan.student_width, m=plan.m, d=d, c=ds.num_classes)
    return [
        _Job(f"{student_arch}_ce_s{seed}", student_arch, "student", "ce", seed),
        _Job(f"{student_arch}_kd_s{seed}", student_arch, "student", "kd", seed, plain.module, plain.file),
        _Job(f"{ked_arch}_ked_s{seed}", ked_arch, "student", "ked", seed, explaining.module, explaining.file,
             superfeatures),
    ]


def build_ked_zoo(plan: KedZooPlan, out: str | Path, *, only: str | None = None, log: Log = None) -> ZooManifest:
    """Build (or resume, or with ``only`` rebuild one model of) the zoo ``plan`` into ``out``.

    Parameters
    ----------
    plan : what the zoo holds and how long each model trains (:data:`KED_ZOOS` has the shipped ones)
    out : the zoo folder (created; models whose records exist are reused)
    only : retrain this model id (or ``"superfeatures"``) and rewrite ``zoo.json``
    log : where progress lines go (``print`` on the command line); None is silent

    Returns
    -------
    the manifest written to ``out / "zoo.json"``
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(plan.data)
    plain_arch = f"mlp_h{plan.teacher_width}"
    started = time.perf_counter()
    plain_id = f"plain_teacher_{plain_arch}"
    plain_entry = _train_one(plan, out, ds, _Job(plain_id, plain_arch, "student", "ce", plan.teacher_seed,
                                                 force=only == plain_id), log)
    plain = _Teacher(_load(out / plain_entry.checkpoint, plain_arch, ds), plain_entry.checkpoint)
    sf = _superfeatures(plan, out, ds, plain.module, plain_id, rebuild=only == "superfeatures", log=log)
    teacher_arch = explaining_mlp_name(plan.teacher_width, m=plan.m, d=int(np.prod(ds.input_shape)),
                                       c=ds.num_classes)
    teacher_id = f"teacher_{teacher_arch}"
    teacher_entry = _train_one(plan, out, ds, _Job(teacher_id, teacher_arch, "teacher", "ce", plan.teacher_seed,
                                                   superfeatures=sf, force=only == teacher_id), log)
    teacher = _Teacher(_load(out / teacher_entry.checkpoint, teacher_arch, ds), teacher_entry.checkpoint)
    students: list[ModelEntry] = []
    for seed in plan.seeds:
        for job in _student_jobs(plan, ds, seed, plain, teacher, sf):
            if only is not None and only != job.model_id and (out / f"{job.model_id}.safetensors").is_file():
                record = _record_path(out, job.model_id).read_text(encoding="utf-8")
                students.append(parse_model(json.loads(record), job.model_id))
                continue
            students.append(_train_one(plan, out, ds, _Job(**{**job.__dict__, "force": only == job.model_id}), log))
    sf_record = json.loads((out / f"superfeatures_M{plan.m}.json").read_text(encoding="utf-8"))
    manifest = ZooManifest(
        name=plan.name, task=Modality.IMAGE, dataset=plan.data, input_shape=tuple(ds.input_shape),
        mean=tuple(ds.mean), std=tuple(ds.std), class_names=tuple(ds.class_names),
        models=(teacher_entry, plain_entry, *students), description=plan.description,
        superfeatures=({k: v for k, v in sf_record.items() if k not in ("groups", "interactions")},),
    )
    (out / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    if log is not None:
        log(f"[ked-zoo] {plan.name}: {len(manifest.models)} models, this run {time.perf_counter() - started:.0f} s")
    return manifest
