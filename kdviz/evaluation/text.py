"""The evaluation plug-in for text zoos: every model against its teacher over snippets, word by word.

:func:`plan_text` (registered for ``Modality.TEXT``) evaluates the test snippets of the zoo's ``split.npz`` (or a
lab's own ``kdviz.io.text.LabelledTexts``) in batches through ``kdviz.analysis.compare.compare_models`` (teacher
+ every student on the same snippets, all explaining the teacher's predicted class, words as the parts). The
long table has the columns of ``kdviz.analysis.compare.FRAME_COLUMNS`` where they mean the same thing over words
(``attention_rho`` = Spearman ρ over words, ``topk_overlap`` with the teacher's top-k words,
``focus_ratio``/``focus_fraction`` on them, ``logit_rho``, ``logit_margin``, ``correct``, the random-weights null
as per-copy values ``*_null_copies``, ``*_null`` and ``*_excess``), plus ``n_words``, ``top_words`` and the VADER
share ``vader`` with its null. ``settings.parts`` is :data:`TEXT_PARTS`.

The summary is ``kdviz.analysis.aggregate.summarize_models`` (with ``vader`` and its null, and ``n_words``, as
text frames have them). The null: ``null_copies`` untrained copies per student architecture (``'auto'``: the R
rule, ``kdviz.analysis.nulls.copies_for(architectures)``), all computed in every batch: gradient saliency on a
copy costs about as much as on a student, so sequential stopping saves little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdviz.analysis.compare import ComparedModel, CompareOptions, NullOptions, compare_models
from kdviz.attribution.methods import get_method
from kdviz.errors import InvalidInputError, MissingDataError
from kdviz.evaluation.batch import EvalResult, EvalSettings
from kdviz.evaluation.pipeline import (
    EvalOptions,
    EvalPlan,
    check_counts,
    register_evaluation,
    resolve_null_copies,
    run_plan,
)
from kdviz.io.hf_text import load_text_zoo
from kdviz.io.text import LabelledTexts, TextSplit, read_rotten_tomatoes, texts_fingerprint, vader_lexicon
from kdviz.vocab import Modality

__all__ = [
    "DEFAULT_TEXT_METHOD",
    "TEXT_DATASETS",
    "TEXT_PARTS",
    "TextBatches",
    "canonical_text_method",
    "evaluate_text_zoo",
    "make_text_settings",
    "plan_text",
    "text_entries",
    "text_test_set",
]

TEXT_PARTS = "words"  # ``EvalSettings.parts`` of a text evaluation
DEFAULT_TEXT_METHOD = "grad_x_embedding"  # the seed paper's gradient saliency
TEXT_DATASETS = ("rotten_tomatoes",)


def canonical_text_method(method: str | None) -> str:
    """A text attribution method's name (``ig``, ``gxe``, ``saliency`` accepted); None -> gradient saliency."""
    if method is None:
        return DEFAULT_TEXT_METHOD
    return get_method(method, Modality.TEXT).name


def text_entries(zoo: Any) -> list[ComparedModel]:
    """Every model of a loaded ``TextZoo`` as a ``ComparedModel`` record, teacher first, then in zoo order."""
    teachers = [m for m in zoo.models if m.entry.role == "teacher"]
    if len(teachers) != 1:
        raise InvalidInputError(f"text zoo {zoo.manifest.name!r} must have exactly one teacher, has {len(teachers)}")
    return [ComparedModel.of(m) for m in [teachers[0], *[m for m in zoo.models if m is not teachers[0]]]]


def text_test_set(zoo: Any) -> tuple[list[str], np.ndarray]:
    """The zoo's recorded test split: snippets and labels (``split.npz`` positions into the corpus)."""
    dataset = str(zoo.manifest.dataset)
    if dataset not in TEXT_DATASETS:
        raise InvalidInputError(f"text zoo dataset {dataset!r}: kdviz reads {', '.join(TEXT_DATASETS)}")
    split_file = Path(zoo.root) / str(zoo.text.get("split", "split.npz"))
    if not split_file.is_file():
        raise MissingDataError(f"{split_file}: the zoo's recorded test split is missing")
    split = TextSplit.load(split_file)
    df = read_rotten_tomatoes()
    rows = df.iloc[np.asarray(split.test, dtype=np.int64)]
    return rows["text"].astype(str).tolist(), rows["label"].to_numpy(dtype=np.int64)


def make_text_settings(zoo: Any, options: EvalOptions, *, n_available: int, dataset: str | None = None) -> EvalSettings:
    """Validated settings (parameters resolved against the registered text method; ``k`` default: the zoo's, else 5;
    ``dataset`` default: the zoo's, for its recorded split)."""
    name = canonical_text_method(options.method)
    params = get_method(name, Modality.TEXT).resolve(dict(options.method_params or {}))
    k = int(zoo.text.get("k", 5) if options.k is None else options.k)
    check_counts(options.limit, options.batch_size, k)
    copies, _sequential = resolve_null_copies(
        options.null_copies, [str(m.entry.arch) for m in zoo.models if m.entry.role != "teacher"])
    sha = {m.id: str(getattr(m.entry, "sha256", "") or m.text.sha256) for m in zoo.models}
    limit = options.limit
    return EvalSettings(
        zoo=str(zoo.manifest.name), dataset=str(zoo.manifest.dataset if dataset is None else dataset), method=name,
        method_params=params, parts=TEXT_PARTS, k=k, limit=None if limit is None else int(limit),
        n_inputs=int(n_available if limit is None else min(int(limit), n_available)),
        batch_size=int(options.batch_size), models=tuple((e.id, sha[e.id]) for e in text_entries(zoo)),
        precision="fp32", target="teacher", null_copies=copies, null_sequential=False,
    )


@dataclass(frozen=True)
class TextBatches:
    """The batch runner of a text zoo: its models with their tokenizers, the settings, the VADER lexicon."""

    teacher: ComparedModel
    students: tuple[ComparedModel, ...]
    settings: EvalSettings
    lexicon: frozenset[str] | None
    max_length: int
    device: str = "cpu"  # text models are evaluated on the CPU

    def evaluate(self, lo: int, hi: int, inputs: Sequence[str], labels: np.ndarray | None) -> pd.DataFrame:
        """Rows of snippets ``lo:hi`` through ``compare_models``, words as the parts."""
        s = self.settings
        options = CompareOptions(method_params=s.method_params, input_ids=list(range(lo, hi)),
                                 null=NullOptions(copies=s.null_copies), modality=Modality.TEXT,
                                 reading={"max_length": self.max_length, "lexicon": self.lexicon})
        return compare_models(self.teacher, list(self.students), list(inputs), labels=labels, method=s.method,
                              parts=TEXT_PARTS, k=s.k, options=options).frame

    def for_worker(self, device: str) -> TextBatches:
        """The same runner (a worker holds the models and tokenizers as they are)."""
        return self


def _refuse_array_options(dataset: Any, options: EvalOptions) -> None:
    """A text zoo's parts are words, on the CPU in fp32; an array test set does not apply either."""
    given = {name: value for name, value in (("parts", options.parts), ("device", options.device)) if value is not None}
    if options.precision != "fp32":
        given["precision"] = options.precision
    if dataset is not None and not hasattr(dataset, "texts"):
        given["dataset"] = dataset
    if given:
        raise InvalidInputError(
            "a text zoo is evaluated with words as the parts, on the CPU in fp32, on its recorded test split or on "
            f"texts (kdviz.io.text.read_labelled_texts); {', '.join(given)} cannot be set for it")


@register_evaluation(Modality.TEXT, part_kinds={TEXT_PARTS: Modality.TEXT})
def plan_text(zoo: Any, dataset: Any, options: EvalOptions) -> EvalPlan:
    """The plan for a text zoo (a folder or a loaded ``kdviz.io.hf_text.TextZoo``) on its recorded test split, or
    on ``dataset`` (``name``, ``texts``, ``labels``; a None name is a fingerprint of the texts, so a resumed run
    never reuses batches of other texts)."""
    _refuse_array_options(dataset, options)
    if not hasattr(zoo, "models"):
        zoo = load_text_zoo(zoo)
    if dataset is None:
        texts, labels = text_test_set(zoo)
        name = None
    else:
        texts, labels = list(dataset.texts), dataset.labels
        name = dataset.name or f"texts#{texts_fingerprint(texts, labels)}"
    settings = make_text_settings(zoo, options, n_available=len(texts), dataset=name)
    entries = text_entries(zoo)
    max_length = int(zoo.text.get("max_length", 64))
    facts: dict[str, Any] = {
        "task": Modality.TEXT.value, "max_length": max_length,
        "test_accuracy": {m.id: getattr(m.entry, "test_accuracy", None) for m in zoo.models},
        "layers": {m.id: m.text.layers for m in zoo.models}, "hidden": {m.id: m.text.hidden for m in zoo.models},
        "epochs": {m.id: getattr(m.entry, "epochs", None) for m in zoo.models},
    }
    if settings.null_copies:
        facts["null_copies_by_arch"] = {str(s.arch): settings.null_copies for s in entries[1:]}
    return EvalPlan(settings=settings, runner=TextBatches(entries[0], tuple(entries[1:]), settings, vader_lexicon(),
                                                          max_length),
                    inputs=list(texts), labels=None if labels is None else np.asarray(labels, dtype=np.int64),
                    device="cpu", facts=facts)


def evaluate_text_zoo(zoo: Any, *, texts: Sequence[str] | None = None, labels: np.ndarray | None = None,
                      dataset: str | None = None, **options: Any) -> EvalResult:
    """Evaluate every model of a text zoo (a folder or a loaded ``kdviz.io.hf_text.TextZoo``) against its teacher.

    Parameters
    ----------
    zoo : folder or TextZoo
    texts, labels : other snippets than the zoo's test split (default: the split); labels may be None
    dataset : the name recorded for ``texts``; default a fingerprint of them
    **options : ``kdviz.evaluation.pipeline.EvalOptions`` fields: ``method`` a registered text method's name (``ig``
        accepted; default gradient saliency) with ``method_params`` (e.g. ``{"n_steps": 32}`` for IG), ``k`` (the
        teacher's top-k words; default the zoo's ``text.k``, else 5), ``limit``, ``batch_size``, ``cache_dir``,
        ``progress``, ``progress_bar``, ``null_copies`` (``'auto'``: the R rule; 0 turns the null off),
        ``cluster``

    Returns
    -------
    EvalResult
    """
    opts = EvalOptions(**options)
    given = None if texts is None else LabelledTexts(dataset or "", tuple(texts), labels, ())
    return run_plan(plan_text(zoo, given, opts), opts)
