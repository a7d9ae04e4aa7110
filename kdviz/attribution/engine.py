"""The attribution entry points and their result types.

``attribute(model, x, *, method, target, **params)`` runs one registered tensor method on a whole batch (one run
per model for N inputs, never N runs) and reduces the result:

- ``raw``: the method's output, shape of the input (N, C, H, W) or (N, C, L);
- ``importance``: sum over channels of ``|A|``, shape (N, H, W) or (N, L);
- ``signed``: sum over channels of ``A``, for display.

``attribute_text(model, encoded, *, method, target)`` runs one registered text method and sums its token scores
into words. ``predict_logits`` is the forward pass under the same lock.

The methods are the registry's (:mod:`kdviz.attribution.methods`; a method registered with
``kdviz.register_method`` is found like a built-in one); how they are run (locks, devices, inference twins,
the memory budget, the out-of-memory retry, seeded RNG) is :mod:`kdviz.attribution.runtime`'s job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from kdviz.attribution.ig_steps import MAX_STEPS, completeness_error, step_ladder
from kdviz.attribution.locks import model_lock
from kdviz.attribution.methods import AttributionMethod, get_method
from kdviz.attribution.runtime import (
    TWIN_MIN_PASSES,
    as_batch,
    gradient_passes,
    has_twin,
    inference_twin,
    prepared,
    resolve_device,
    resolve_target,
    row_budget,
    run_batched,
    seeded,
)
from kdviz.attribution.text import Encoded, TextAttribution, text_logits, word_importance
from kdviz.vocab import Modality

__all__ = [
    "Attribution",
    "attribute",
    "attribute_auto_steps",
    "attribute_text",
    "predict_logits",
]

_Target = int | Sequence[int] | torch.Tensor | np.ndarray | None


@dataclass(frozen=True, eq=False)
class Attribution:
    """Attributions of one model on a batch (numpy inside, so it pickles).

    Attributes
    ----------
    method, params : the method name and every parameter used (defaults filled in).
    raw : (N, C, H, W) or (N, C, L) float32; for CAMs C = 1 (the map has no channels).
    importance : (N, H, W) or (N, L), sum over channels of ``|raw|``.
    signed : same shape as ``importance``, sum over channels of ``raw``.
    delta : (N,) IG convergence delta (Σ attributions − (f(x) − f(baseline))), None for other methods.
    steps : (N,) IG steps each input ended with when ``auto_steps`` chose them (``kdviz.attribution.ig_steps``), else None.
    target : (N,) class explained for each input.
    internal_batch_size : rows per forward pass the method reported (IG), else None.
    warnings : what the engine had to do differently (e.g. CUDA out-of-memory retries).
    """

    method: str
    params: dict[str, Any]
    raw: np.ndarray
    importance: np.ndarray
    signed: np.ndarray
    target: np.ndarray
    delta: np.ndarray | None = None
    device: str = "cpu"
    internal_batch_size: int | None = None
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    steps: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of inputs."""
        return int(self.raw.shape[0])

    @property
    def completeness_error(self) -> np.ndarray | None:
        """(N,) IG's |δ| / |f(x) − f(baseline)| (``kdviz.attribution.ig_steps.completeness_error``); None without a delta."""
        return None if self.delta is None else completeness_error(self.raw, self.delta)


def predict_logits(
    model: nn.Module, inputs: torch.Tensor | np.ndarray, *, device: str | torch.device | None = None
) -> np.ndarray:
    """Logits of ``model`` on a batch, in eval mode and under the model's lock.

    Parameters
    ----------
    model : nn.Module
    inputs : tensor or array
        (N, C, H, W) images or (N, C, L) series; not modified.
    device : str or torch.device, optional
        Default: cuda if available, then mps, then cpu.

    Returns
    -------
    numpy.ndarray
        (N, n_classes) float32.
    """
    dev = resolve_device(device)
    x = as_batch(inputs, dev)
    with prepared(model, dev), torch.no_grad():
        return model(x).detach().float().cpu().numpy()


def _tensor_method(method: str | AttributionMethod, inputs: Any) -> AttributionMethod:
    """Look ``method`` up for ``inputs``' modality: series for (N, C, L), images otherwise."""
    modality = Modality.SERIES if getattr(inputs, "ndim", None) == 3 else Modality.IMAGE
    return get_method(method, modality)


def attribute(
    model: nn.Module,
    inputs: torch.Tensor | np.ndarray,
    *,
    method: str,
    target: _Target,
    device: str | torch.device | None = None,
    **params: Any,
) -> Attribution:
    """Attribute ``model``'s output for ``target`` to its inputs, for a whole batch at once.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits (N, n_classes). It is moved to ``device`` (in place, as
        ``nn.Module.to`` does) and run in eval mode; its train/eval mode is restored afterwards.
    inputs : tensor or array, (N, C, H, W) images or (N, C, L) series
        Not modified.
    method : str
        A registered method's name or alias (``kdviz.attribution.methods.method_names()``).
    target : int, sequence of N ints, tensor (N,), or None
        Class explained per input; None = the model's own prediction.
    device : str or torch.device, optional
        Default: cuda if available, then mps, then cpu.
    **params
        Method parameters (see ``get_method(method).params``); unknown names raise ``InvalidInputError``.

    Returns
    -------
    Attribution
        ``raw`` (input shape), ``importance`` and ``signed`` ((N, H, W) or (N, L)), ``delta`` for IG.
    """
    spec = _tensor_method(method, inputs)
    p = spec.resolve(params)
    if p.get("auto_steps"):
        return attribute_auto_steps(model, inputs, target=target, device=device, params=p)
    dev = resolve_device(device)
    x = as_batch(inputs, dev)
    warnings: list[str] = []
    start = time.perf_counter()
    with prepared(model, dev):
        t = resolve_target(model, x, target)
        if spec.needs_input_grad:
            x.requires_grad_()  # our private copy; saves captum a warning per call
        rows = p.get("internal_batch_size") or row_budget(model, x)
        rng = seeded(p.get("seed", 0), dev) if spec.stochastic else nullcontext()
        net = model
        if spec.input_gradient_only and (has_twin(model) or gradient_passes(p, len(x)) >= TWIN_MIN_PASSES):
            net = inference_twin(model, dev)
        with rng:
            attr, delta, rows = run_batched(spec, net, x, t, p, rows, warnings)
    raw = attr.float().cpu().numpy()
    return Attribution(
        method=spec.name,
        params=p,
        raw=raw,
        importance=np.abs(raw).sum(axis=1),
        signed=raw.sum(axis=1),
        target=t.cpu().numpy(),
        delta=None if delta is None else delta.float().cpu().numpy(),
        device=str(dev),
        internal_batch_size=spec.internal_batch_size(p, x.shape[0], rows),
        elapsed_s=time.perf_counter() - start,
        warnings=tuple(warnings),
    )


def attribute_auto_steps(
    model: torch.nn.Module,
    inputs: torch.Tensor | np.ndarray,
    *,
    target: Any,
    device: str | torch.device | None,
    params: dict[str, Any],
) -> Attribution:
    """IG with per-input step counts: each input gets the fewest ladder rungs whose error is ≤ ``tolerance``.

    Parameters
    ----------
    model : nn.Module
    inputs : tensor or array
        (N, C, H, W) or (N, C, L).
    target : int, sequence of N ints, tensor (N,), or None
    device : str or torch.device, optional
    params : dict
        IG's resolved parameters (``n_steps`` = the first rung, ``tolerance``).

    Returns
    -------
    Attribution
        ``steps`` holds the count each input ended with; inputs that never met the tolerance end at
        :data:`~kdviz.attribution.ig_steps.MAX_STEPS` (their ``completeness_error`` says by how much).
    """
    dev = resolve_device(device)
    x = as_batch(inputs, dev)
    with prepared(model, dev), torch.no_grad():
        t = resolve_target(model, x, target)
    fixed = {k: v for k, v in params.items() if k not in ("n_steps", "auto_steps")}
    fixed["auto_steps"] = False
    n = x.shape[0]
    tol = float(params["tolerance"])
    raw: np.ndarray | None = None
    delta = np.zeros(n, dtype=np.float32)
    steps = np.zeros(n, dtype=np.int64)
    pending = np.arange(n)
    elapsed = 0.0
    warnings: list[str] = []
    last = None
    for rung in step_ladder(int(params["n_steps"])):
        last = attribute(model, x[pending], method="integrated_gradients", target=t[pending], device=dev,
                         n_steps=rung, **fixed)
        elapsed += last.elapsed_s
        warnings.extend(w for w in last.warnings if w not in warnings)
        if raw is None:
            raw = np.zeros((n, *last.raw.shape[1:]), dtype=last.raw.dtype)
        err = completeness_error(last.raw, last.delta)
        done = (err <= tol) | (rung >= MAX_STEPS)
        idx = pending[done]
        raw[idx], delta[idx], steps[idx] = last.raw[done], last.delta[done], rung
        pending = pending[~done]
        if pending.size == 0:
            break
    assert raw is not None and last is not None
    return replace(
        last, params=dict(params), raw=raw, importance=np.abs(raw).sum(axis=1), signed=raw.sum(axis=1),
        target=t.cpu().numpy(), delta=delta, steps=steps, elapsed_s=elapsed, warnings=tuple(warnings),
        internal_batch_size=None,
    )


def attribute_text(model: nn.Module, enc: Encoded, *, method: str = "integrated_gradients",
                   target: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                   special_ids: dict[str, int] | None = None, **params: Any) -> TextAttribution:
    """Attribute a text classifier's logit ``target`` on an encoded batch with a registered text method.

    Runs on CPU under the model's lock, in eval mode (the mode is restored afterwards).

    Parameters
    ----------
    model : nn.Module
        A Hugging Face sequence classifier (or ``kdviz.models.hf_text.VerbalizedLM``).
    enc : Encoded
        From ``kdviz.attribution.text.encode_words``.
    method : str, default "integrated_gradients"
        A registered text method's name or alias (``method_names(Modality.TEXT)``).
    target : sequence of N ints, array or tensor, optional
        Class explained per text; default the model's own prediction.
    special_ids : dict, optional
        ``"pad"``/``"mask"`` -> token id (the tokenizer's); IG with ``baseline="pad"`` falls back to
        ``model.config.pad_token_id``.
    **params
        Method parameters; unknown names raise ``InvalidInputError``.

    Returns
    -------
    TextAttribution
        Token scores, their word sums (NaN beyond each text's words), targets, logits and the delta.
    """
    spec = get_method(method, Modality.TEXT)
    resolved = spec.resolve(params)
    start = time.perf_counter()
    with model_lock(model):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = text_logits(model, enc.input_ids, enc.attention_mask)
            tgt = logits.argmax(1) if target is None else torch.as_tensor(np.asarray(target), dtype=torch.long)
            scores = spec.run_text(model, enc, tgt, resolved, special_ids)
        finally:
            model.train(was_training)
    tokens, signed = scores.tokens.float(), scores.signed.float()
    width = max(int(enc.n_words.max()) if len(enc.n_words) else 0, 1)
    valid = np.arange(width)[None, :] < enc.n_words[:, None]
    words = np.where(valid, word_importance(tokens, enc.token_word, width).numpy(), np.nan)
    signed_words = np.where(valid, word_importance(signed, enc.token_word, width).numpy(), np.nan)
    return TextAttribution(spec.name, resolved, tokens.numpy(), signed.numpy(), words, signed_words,
                           tgt.numpy(), logits.float().numpy(), scores.delta, time.perf_counter() - start)

