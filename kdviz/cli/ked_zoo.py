"""``kdviz ked-zoo``: a KED demo zoo as the paper builds it (plain and explaining teachers, CE / KD / KED students).

``kdviz ked-zoo --zoo fashion-mnist-ked --out assets/zoo/fashion-mnist-ked`` runs, in order
(each step skipped when its files exist, so an interrupted build resumes):

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
accuracy is measured after reloading the float16 file. (It lives in ``kdviz.cli``: it needs both the training
layer and :mod:`kdviz.modalities.superfeatures`, which sits above training.)
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import asdict, dataclass, replace
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
from kdviz.training.explaining import (
    PaperMethod,
    PaperRecipe,
    class_log_prior,
    predict_logits,
    train_paper,
)

__all__ = ["KED_ZOOS", "KedZooPlan", "build_ked_zoo", "main", "register"]


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
    return load_checkpoint(path, arch=arch, num_classes=ds.num_classes, in_channels=ds.in_channels).module.float().eval()


def _accuracy(model: nn.Module, ds: Dataset) -> float:
    logits, _ = predict_logits(model, torch.from_numpy(ds.model_input(ds.x_test)))
    return float((logits.argmax(1).numpy() == ds.y_test).mean())


def _record_path(out: Path, model_id: str) -> Path:
    return out / "records" / f"{model_id}.json"


def _train_one(plan: KedZooPlan, out: Path, ds: Dataset, *, model_id: str, arch: str, role: str,
               method: PaperMethod, seed: int, teacher: nn.Module | None, teacher_file: str | None,
               superfeatures: tuple[np.ndarray, np.ndarray] | None, force: bool = False) -> ModelEntry:
    """Train, save float16, reload, measure; the record is written next to the zoo (resumable)."""
    record = _record_path(out, model_id)
    if record.is_file() and (out / f"{model_id}.safetensors").is_file() and not force:
        return parse_model(json.loads(record.read_text(encoding="utf-8")), str(record))
    is_teacher = model_id.startswith(("teacher", "plain_teacher"))
    recipe = PaperRecipe(epochs=plan.teacher_epochs if is_teacher else plan.student_epochs,
                         batch_size=plan.teacher_batch if is_teacher else plan.student_batch, seed=seed)
    model = seeded_model(arch, seed=seed, num_classes=ds.num_classes, in_channels=ds.in_channels)
    if superfeatures is not None:
        labels, log_prior = superfeatures
        model.set_superfeatures(labels, log_prior, generator=torch.Generator().manual_seed(seed))  # type: ignore[operator]
    print(f"[ked-zoo] {model_id}: {arch}, {method}, seed {seed}, {recipe.epochs} epochs", flush=True)
    result = train_paper(model, ds, recipe, method=method, teacher=teacher, log=True)
    path = out / f"{model_id}.safetensors"
    save_weights(model, path, metadata={"arch": arch, "num_classes": str(ds.num_classes),
                                        "in_channels": str(ds.in_channels), "dtype": "float16", "id": model_id})
    shipped = load_checkpoint(path, arch=arch, num_classes=ds.num_classes, in_channels=ds.in_channels)
    m = plan.m if method == "ked" else None
    entry = ModelEntry(
        id=model_id, role=role, arch=arch,  # type: ignore[arg-type]
        alpha=round(1.0 - recipe.lam, 6) if method != "ce" else 1.0,
        temperature=recipe.temperature, method=method, beta=0.0,
        tau=recipe.tau if method == "ked" else None, checkpoint=path.name, params=shipped.params,
        test_accuracy=round(_accuracy(shipped.module.float().eval(), ds), 6), train_seconds=result.seconds,
        command=_build_command(plan, out, model_id) + (f"  # teacher: {teacher_file}" if teacher_file else ""),
        seed=seed, sha256=shipped.sha256, parts=m, epochs=recipe.epochs,
        accuracy_curve=tuple(round(a, 4) for a in result.accuracy_curve),
        ked_mu=recipe.mu if method == "ked" else None, ked_lambda=recipe.lam if method == "ked" else None,
        superfeatures=f"superfeatures_M{plan.m}.npy" if arch.startswith("ked_") else None,
    )
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(asdict(entry), indent=2) + "\n", encoding="utf-8")
    return entry


def build_ked_zoo(plan: KedZooPlan, out: str | Path, *, only: str | None = None) -> ZooManifest:
    """Build (or resume, or with ``only`` rebuild one model of) the zoo ``plan`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(plan.data)
    plain_arch = f"mlp_h{plan.teacher_width}"
    x_train = torch.from_numpy(ds.model_input(ds.x_train))
    started = time.perf_counter()

    def force(model_id: str) -> bool:
        return only == model_id

    plain_id = f"plain_teacher_{plain_arch}"
    plain_entry = _train_one(plan, out, ds, model_id=plain_id, arch=plain_arch, role="student", method="ce",
                             seed=plan.teacher_seed, teacher=None, teacher_file=None, superfeatures=None,
                             force=force(plain_id))
    plain = _load(out / plain_entry.checkpoint, plain_arch, ds)

    sf_file = out / f"superfeatures_M{plan.m}.npy"
    prior_file = out / "class_log_prior.npy"
    if not sf_file.is_file() or not prior_file.is_file() or only == "superfeatures":
        rng = np.random.default_rng(plan.teacher_seed)
        pick = np.sort(rng.choice(len(ds.x_train), size=min(plan.hessian_inputs, len(ds.x_train)), replace=False))
        print(f"[ked-zoo] superfeatures: Hessian over {len(pick)} training inputs, Louvain to M = {plan.m}", flush=True)
        sf = build_paper_superfeatures(plain, ds.model_input(ds.x_train[pick]), m=plan.m)
        save_superfeatures(sf, out, teacher=plain_id)
        np.save(prior_file, class_log_prior(plain, x_train), allow_pickle=False)
        print(f"[ked-zoo] superfeatures sizes {sf.sizes}, resolution {sf.resolution}, {sf.seconds} s", flush=True)
    labels = np.load(sf_file, allow_pickle=False)
    log_prior = np.load(prior_file, allow_pickle=False)

    d = int(np.prod(ds.input_shape))
    teacher_arch = explaining_mlp_name(plan.teacher_width, m=plan.m, d=d, c=ds.num_classes)
    teacher_id = f"teacher_{teacher_arch}"
    teacher_entry = _train_one(plan, out, ds, model_id=teacher_id, arch=teacher_arch, role="teacher", method="ce",
                               seed=plan.teacher_seed, teacher=None, teacher_file=None,
                               superfeatures=(labels, log_prior), force=force(teacher_id))
    teacher = _load(out / teacher_entry.checkpoint, teacher_arch, ds)

    student_arch = f"mlp_h{plan.student_width}"
    ked_arch = explaining_mlp_name(plan.student_width, m=plan.m, d=d, c=ds.num_classes)
    students: list[ModelEntry] = []
    for seed in plan.seeds:
        jobs: list[tuple[str, str, PaperMethod, nn.Module | None, str | None, bool]] = [
            (f"{student_arch}_ce_s{seed}", student_arch, "ce", None, None, False),
            (f"{student_arch}_kd_s{seed}", student_arch, "kd", plain, plain_entry.checkpoint, False),
            (f"{ked_arch}_ked_s{seed}", ked_arch, "ked", teacher, teacher_entry.checkpoint, True),
        ]
        for model_id, arch, method, t, t_file, explaining in jobs:
            if only is not None and only != model_id and (out / f"{model_id}.safetensors").is_file():
                students.append(parse_model(json.loads(_record_path(out, model_id).read_text(encoding="utf-8")),
                                            model_id))
                continue
            students.append(_train_one(plan, out, ds, model_id=model_id, arch=arch, role="student", method=method,
                                       seed=seed, teacher=t, teacher_file=t_file,
                                       superfeatures=(labels, log_prior) if explaining else None,
                                       force=force(model_id)))
    sf_record = json.loads((out / f"superfeatures_M{plan.m}.json").read_text(encoding="utf-8"))
    summary = {k: v for k, v in sf_record.items() if k not in ("groups", "interactions")}
    manifest = ZooManifest(
        name=plan.name, task="image", dataset=plan.data, input_shape=tuple(ds.input_shape),
        mean=tuple(ds.mean), std=tuple(ds.std), class_names=tuple(ds.class_names),
        models=(teacher_entry, plain_entry, *students), description=plan.description,
        superfeatures=(summary,),
    )
    (out / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    print(f"[ked-zoo] {plan.name}: {len(manifest.models)} models, this run {time.perf_counter() - started:.0f} s",
          flush=True)
    return manifest


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zoo", choices=sorted(KED_ZOOS), required=True)
    parser.add_argument("--out", required=True, help="zoo folder (created; resumed when it holds records)")
    parser.add_argument("--only", help="retrain this model id (or 'superfeatures') and rewrite zoo.json")
    parser.add_argument("--seeds", type=int, nargs="+", help="student seeds (default: the plan's)")
    parser.add_argument("--teacher-epochs", type=int, help="epochs of both teachers (default: the plan's)")
    parser.add_argument("--student-epochs", type=int, help="epochs of every student (default: the plan's)")
    parser.add_argument("--threads", type=int, help="torch threads")


def _run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = KED_ZOOS[args.zoo]
    if args.seeds:
        plan = replace(plan, seeds=tuple(args.seeds))
    if args.teacher_epochs:
        plan = replace(plan, teacher_epochs=args.teacher_epochs)
    if args.student_epochs:
        plan = replace(plan, student_epochs=args.student_epochs)
    build_ked_zoo(plan, args.out, only=args.only)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``kdviz ked-zoo``."""
    parser = subparsers.add_parser("ked-zoo", help="build a KED demo zoo as the paper does (arXiv 2310.02572)",
                                   description=__doc__.split("\n")[0])
    _add_arguments(parser)
    parser.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m kdviz.cli.ked_zoo …`` (the same as ``kdviz ked-zoo …``)."""
    parser = argparse.ArgumentParser(prog="kdviz ked-zoo", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
