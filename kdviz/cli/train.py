"""``kdviz distill`` (train one student, or a teacher without ``--teacher``), ``kdviz zoo build`` and ``kdviz zoo
superfeatures``.

``kdviz distill`` hands the job to the trainer of the data's modality (:data:`DISTILLERS`): images and series
go through :func:`kdviz.training.zoo_build.distill_to_file`, texts through :mod:`kdviz.cli.text`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from kdviz.cli.text import run_text_distill
from kdviz.evaluation.text import TEXT_DATASETS
from kdviz.io.builtin_datasets import UCR_DATASETS
from kdviz.modalities.superfeatures import build_for_zoo, load_superfeatures, superfeature_file
from kdviz.training.loop import default_config
from kdviz.training.losses import alpha_from_lambda
from kdviz.training.zoo_build import build_zoo, distill_to_file
from kdviz.vocab import Modality, TrainingMethod

__all__ = ["DISTILLERS", "data_modality", "main", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``distill`` and ``zoo`` subcommands."""
    p = subparsers.add_parser(
        "distill",
        help="train one model with KD (and optional saliency distillation) into a .safetensors file",
        description="Train ARCH on NAME with L = α·CE + (1−α)·T²·KL [+ β·L_SD]. Without --teacher, α must be 1 "
        "(plain cross-entropy: how the zoo teachers are made). Prints the model's zoo.json entry.",
    )
    p.add_argument("--teacher", help="teacher checkpoint (.safetensors / .pt); required when α < 1 or --sd-beta > 0")
    p.add_argument("--arch", required=True, help="student architecture: a kdviz.models registry name (resnet8 …), or for text bert-/t5-/gpt2-L<layers>-H<hidden>")
    p.add_argument("--alpha", type=float, default=1.0, help="weight of the hard-label CE term (1.0 = no KD)")
    p.add_argument("--temperature", type=float, default=4.0, help="KD temperature T (default 4)")
    p.add_argument("--sd-beta", type=float, default=0.0, help="weight β of saliency distillation (0 = off)")
    p.add_argument("--sd-parts", type=int, default=None, help="K: grid cells (square number) or time segments")
    p.add_argument("--sd-tau", type=float, default=None, help="saliency softmax temperature τ")
    p.add_argument("--sd-superfeatures", type=int, default=None, metavar="M",
                   help="SD over the teacher's M superfeatures (superfeatures_M<M>.npy next to it) instead of --sd-parts")
    p.add_argument("--method", choices=(TrainingMethod.KD, TrainingMethod.KED_BLACKBOX, TrainingMethod.RATIONALE),
                   default=TrainingMethod.KD,
                   help="kd: KD (+ SD with --sd-beta); ked-blackbox: kdviz's black-box KED (the paper's: kdviz ked-zoo) "
                   "over the teacher's "
                   "superfeatures (kdviz.training.losses; needs superfeatures_M<M>.npy next to the teacher); "
                   "rationale: text students also learn the teacher's top-5 words (kdviz.training.rationale)")
    p.add_argument("--rationale-beta", type=float, default=None, help="rationale: weight β of the rationale loss (0.5)")
    p.add_argument("--ked-lambda", type=float, default=None,
                   help="KED: the paper's λ; sets α = 1/(1+λ) (default: from --alpha, λ = (1−α)/α)")
    p.add_argument("--ked-mu", type=float, default=None, help="KED: share μ of the distillation on explanations (0.5)")
    p.add_argument("--ked-tau", type=float, default=None, help="KED: explanation temperature τ (4)")
    p.add_argument("--ked-m", type=int, default=None, help="KED: number of superfeatures M (8)")
    p.add_argument("--data", default="mnist", help="dataset name (mnist, gunpoint, …)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the zoo recipe's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the zoo recipe's)")
    p.add_argument("--augment-shift", type=int, default=None, help="images: random shifts up to N pixels")
    p.add_argument("--max-train", type=int, default=None, help="train on the first N examples only")
    p.add_argument("--max-test", type=int, default=None, help="report accuracy on the first N test examples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", required=True, help="output .safetensors file (float16 weights)")
    p.set_defaults(func=run_distill)

    z = subparsers.add_parser("zoo", help="demo zoos")
    zsub = z.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    b = zsub.add_parser("build", help="train a demo zoo: teacher, every student, then zoo.json")
    b.add_argument("name", choices=("mnist", "gunpoint"))
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--quick", action="store_true", help="one tiny epoch on a subset (tests; accuracies mean nothing)")
    b.add_argument("--jobs", type=int, default=1, help="train students in N worker processes")
    b.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    b.add_argument("--resume", action="store_true", help="reuse models already finished in --out")
    b.add_argument("--seeds", type=int, default=1,
                   help="training-seed replicates of the recipe's replicate architectures at every α (default 1)")
    b.set_defaults(func=run_zoo_build)

    sfp = zsub.add_parser("superfeatures", help="build the teacher's M superfeatures and store them with a zoo")
    sfp.add_argument("zoo", help="zoo folder (zoo.json + checkpoints)")
    sfp.add_argument("--m", type=int, default=8, help="number of superfeatures M (default 8)")
    sfp.add_argument("--base", default=None, help="base features: 'grid:RxC' (images) or 'segments:N' (series); "
                     "default ~4-pixel cells / ~5-step windows")
    sfp.add_argument("--inputs", type=int, default=256, help="training inputs to average the Hessian over")
    sfp.add_argument("--seed", type=int, default=0, help="Louvain / Kernighan–Lin seed")
    sfp.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sfp.set_defaults(func=run_zoo_superfeatures)


def data_modality(data: str, method: str) -> Modality:
    """What a ``kdviz distill`` trains on: texts for a text dataset or the rationale recipe, series for a UCR
    dataset, images otherwise."""
    if data in TEXT_DATASETS or method == TrainingMethod.RATIONALE:
        return Modality.TEXT
    return Modality.SERIES if data.lower() in UCR_DATASETS else Modality.IMAGE


def run_distill(args: argparse.Namespace) -> int:
    """``kdviz distill``: the trainer of the data's modality."""
    return DISTILLERS[data_modality(args.data, args.method)](args)


def _distill_arrays(args: argparse.Namespace) -> int:
    """An image or series model trained by :func:`kdviz.training.loop.train`; prints its zoo.json entry."""
    if args.teacher is None and (args.alpha < 1.0 or args.sd_beta > 0):
        raise SystemExit("kdviz distill: --teacher is required when --alpha < 1 or --sd-beta > 0")
    role = "student" if args.teacher else "teacher"
    overrides: dict[str, object] = {"alpha": args.alpha, "temperature": args.temperature, "sd_beta": args.sd_beta,
                                    "seed": args.seed, "max_train": args.max_train, "max_test": args.max_test}
    for key in ("sd_parts", "sd_tau", "epochs", "augment_shift", "lr"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    overrides.update(_ked_overrides(args))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = default_config(args.data, role=role, **overrides)
        superfeatures = None
        if (config.ked or config.sd_on_superfeatures) and args.teacher:  # stored next to the teacher's checkpoint
            superfeatures = load_superfeatures(Path(args.teacher).parent, config.ked_m).labels
        entry = distill_to_file(arch=args.arch, data=args.data, config=config, out=args.out,
                                teacher=args.teacher, superfeatures=superfeatures)
    except ValueError as exc:
        raise SystemExit(f"kdviz distill: {exc}") from exc
    print(json.dumps(asdict(entry), indent=2))
    return 0


def _ked_overrides(args: argparse.Namespace) -> dict[str, object]:
    """TrainConfig fields of ``--method ked-blackbox`` (λ → α = 1/(1+λ)); SystemExit on contradicting options."""
    ked_opts = ("ked_lambda", "ked_mu", "ked_tau", "ked_m")
    if args.method != TrainingMethod.KED_BLACKBOX:
        if any(getattr(args, k) is not None for k in ked_opts):
            raise SystemExit("kdviz distill: --ked-* options need --method ked-blackbox")
        if args.sd_superfeatures is not None:  # SD over the teacher's superfeatures (M stored as ked_m)
            return {"sd_on_superfeatures": True, "ked_m": args.sd_superfeatures}
        return {}
    if args.teacher is None:
        raise SystemExit("kdviz distill: --method ked-blackbox needs --teacher")
    out: dict[str, object] = {"ked": True}
    if args.sd_superfeatures is not None:
        raise SystemExit("kdviz distill: --sd-superfeatures is for --method kd with --sd-beta")
    if args.ked_lambda is not None:
        alpha = alpha_from_lambda(args.ked_lambda)
        if args.alpha != 1.0 and abs(args.alpha - alpha) > 1e-9:
            raise SystemExit(f"kdviz distill: --ked-lambda {args.ked_lambda:g} means α = {alpha:g}, "
                             f"but --alpha is {args.alpha:g}")
        out["alpha"] = alpha
    for key in ("ked_mu", "ked_tau", "ked_m"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    return out


DISTILLERS: dict[Modality, Callable[[argparse.Namespace], int]] = {
    Modality.IMAGE: _distill_arrays,
    Modality.SERIES: _distill_arrays,
    Modality.TEXT: run_text_distill,
}


def run_zoo_build(args: argparse.Namespace) -> int:
    """``kdviz zoo build``: a demo zoo, teacher first, then every student and zoo.json."""
    start = time.perf_counter()
    manifest = build_zoo(args.name, Path(args.out), quick=args.quick, jobs=args.jobs, threads=args.threads,
                         resume=args.resume, seeds=args.seeds, log=lambda s: print(s, flush=True))
    print(f"wrote {Path(args.out) / 'zoo.json'}: {len(manifest.models)} models in {time.perf_counter() - start:.0f} s")
    return 0


def run_zoo_superfeatures(args: argparse.Namespace) -> int:
    """``kdviz zoo superfeatures``: the teacher's M superfeatures, stored with the zoo."""
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        sf = build_for_zoo(args.zoo, m=args.m, base=args.base, n_inputs=args.inputs, seed=args.seed)
    except ValueError as exc:
        raise SystemExit(f"kdviz zoo superfeatures: {exc}") from exc
    print(f"wrote {Path(args.zoo) / superfeature_file(sf.m)}: M={sf.m} over {sf.base}, sizes {list(sf.sizes)}, "
          f"{sf.n_inputs} inputs, {sf.seconds:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m kdviz.cli.train`` (the same commands as ``kdviz``)."""
    parser = argparse.ArgumentParser(prog="kdviz")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
