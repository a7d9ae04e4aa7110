"""The attribution-method registry: each method is one object, registered once where it is defined.

An :class:`AttributionMethod` carries everything the rest of kdviz needs to know about a method: its name and
label, its parameters (:class:`ParamSpec`, with defaults and limits, from which the dashboard builds its widgets
and against which ``attribute`` validates keyword arguments), the modalities and model kinds it applies to, how
the engine must run it (input gradients, inference twin, seeded RNG) and the run hook itself. Families of methods
live in :mod:`kdviz.attribution.methods` and register themselves; this module imports none of them.

The registry is keyed by (modality, name): image and series models take the same tensor methods, text models
take encoded texts, so ``integrated_gradients`` exists once for tensors and once for texts. Names and aliases
are looked up case-insensitively; an unknown name raises :class:`~kdviz.errors.UnknownNameError` listing the
valid ones.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import torch
from torch import nn

from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.vocab import Modality

__all__ = [
    "TENSOR_MODALITIES",
    "AttributionMethod",
    "ParamKind",
    "ParamSpec",
    "TokenScores",
    "get_method",
    "method_label",
    "method_names",
    "register_method",
    "unavailable_methods",
    "unregister_method",
]

ParamKind = Literal["int", "float", "choice", "bool"]
TENSOR_MODALITIES = frozenset({Modality.IMAGE, Modality.SERIES})
ALL_MODEL_KINDS = ("cnn", "vit", "series", "other")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an attribution method: enough for a UI to build a widget and to validate it."""

    name: str
    kind: ParamKind
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def validate(self, value: Any, *, method: str = "") -> Any:
        """Coerce ``value`` to this parameter's kind.

        Parameters
        ----------
        value : Any
            The value given for this parameter.
        method : str, optional
            The method's name, for the error message.

        Returns
        -------
        Any
            ``value`` as a bool, a choice, an int or a float.

        Raises
        ------
        InvalidInputError
            Naming the parameter, when ``value`` is of the wrong kind or out of range.
        """
        where = f"{method}: " if method else ""
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise InvalidInputError(f"{where}{self.name} must be a bool, got {value!r}")
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise InvalidInputError(f"{where}{self.name}={value!r} is not one of {list(self.choices)}")
            return value
        return self._number(value, where)

    def _number(self, value: Any, where: str) -> int | float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where}{self.name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise InvalidInputError(f"{where}{self.name} must be a finite number, got {value!r}")
        if self.kind == "int":
            if not number.is_integer():
                raise InvalidInputError(f"{where}{self.name} must be an integer, got {value!r}")
            value = int(number)
        else:
            value = number
        if self.min is not None and value < self.min:
            raise InvalidInputError(f"{where}{self.name}={value} is below its minimum {self.min}")
        if self.max is not None and value > self.max:
            raise InvalidInputError(f"{where}{self.name}={value} is above its maximum {self.max}")
        return value


@dataclass(frozen=True)
class TokenScores:
    """What a text method's run hook returns for a batch of N texts padded to L tokens.

    Attributes
    ----------
    tokens : torch.Tensor
        (N, L) non-negative token importance; padding scores 0.
    signed : torch.Tensor
        (N, L) signed view of the same scores (equal to ``tokens`` for unsigned methods).
    delta : numpy.ndarray or None
        (N,) convergence delta for path methods, else None.
    """

    tokens: torch.Tensor
    signed: torch.Tensor
    delta: np.ndarray | None = None


class AttributionMethod:
    """One attribution method: its description, parameters, applicability and run hook.

    Subclass it, set the class attributes and override :meth:`run` (tensor methods: images and series) or
    :meth:`run_text` (text methods), then register an instance (``register_method`` also works as a class
    decorator). Class attributes:

    name, label : registry key (lower case) and display name.
    params : tuple of :class:`ParamSpec`; ``attribute`` accepts exactly these keyword parameters.
    description : one line for the UI.
    modalities : the :class:`~kdviz.vocab.Modality` values whose inputs it takes (default images and series).
    stochastic : draws random numbers (the engine seeds them from the ``seed`` parameter).
    has_delta : returns a convergence delta (IG).
    applies_to, not_applicable : model kinds (``kdviz.attribution.vision_transformer.model_kind``) it applies
        to, and why it does not apply to the others.
    needs_input_grad : the input tensor must require gradients before the run.
    input_gradient_only : it needs only d(output)/d(input), so it may run on a frozen, fused inference twin.
    aliases : other names it answers to (``ig``, ``sg`` …).
    captum_class : the captum class it calls, if any (informational; tests count its calls).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    params: ClassVar[tuple[ParamSpec, ...]] = ()
    description: ClassVar[str] = ""
    modalities: ClassVar[frozenset[Modality]] = TENSOR_MODALITIES
    stochastic: ClassVar[bool] = False
    has_delta: ClassVar[bool] = False
    applies_to: ClassVar[tuple[str, ...]] = ALL_MODEL_KINDS
    not_applicable: ClassVar[str] = ""
    needs_input_grad: ClassVar[bool] = False
    input_gradient_only: ClassVar[bool] = False
    aliases: ClassVar[tuple[str, ...]] = ()
    captum_class: ClassVar[type | None] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def defaults(self) -> dict[str, Any]:
        """Default value of every parameter.

        Returns
        -------
        dict
            Parameter name -> default.
        """
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``params``, validated.

        Parameters
        ----------
        params : dict
            Keyword parameters given by the caller.

        Returns
        -------
        dict
            Every parameter of the method, coerced to its kind.

        Raises
        ------
        InvalidInputError
            Naming an unknown or bad parameter.
        """
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidInputError(
                f"unknown parameter(s) {unknown} for method {self.name!r}; valid: {sorted(known)}"
            )
        out = self.defaults()
        for name, value in params.items():
            out[name] = known[name].validate(value, method=self.name)
        return out

    def reason_not_applicable(self, kind: str) -> str | None:
        """Why the method does not apply to models of ``kind``, or None when it does.

        Parameters
        ----------
        kind : str
            A model kind: ``cnn``, ``vit``, ``series`` or ``other``.

        Returns
        -------
        str or None
            The reason, for the UI to show.
        """
        return None if kind in self.applies_to else self.not_applicable

    def internal_batch_size(self, params: dict[str, Any], n_inputs: int, rows: int) -> int | None:
        """Rows per forward pass the method used with a row budget of ``rows``; None when it does not say.

        Parameters
        ----------
        params : dict
            The resolved parameters.
        n_inputs : int
            Inputs in the batch.
        rows : int
            The row budget the engine ran it with.

        Returns
        -------
        int or None
            Reported in ``Attribution.internal_batch_size``.
        """
        return None

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attribute a batch of images or series (the engine holds the model's lock, in eval mode).

        Parameters
        ----------
        model : nn.Module
            The classifier (or its inference twin).
        x : torch.Tensor
            (N, C, H, W) or (N, C, L), a private copy on the model's device.
        target : torch.Tensor
            (N,) class explained per input.
        params : dict
            The resolved parameters.
        rows : int
            How many input rows (inputs × steps or samples) fit in one forward pass.

        Returns
        -------
        tuple
            Attributions of ``x``'s shape (C may be 1 for maps without channels) and the (N,) delta or None.
        """
        raise NotImplementedError(f"{self.name!r} does not attribute tensors")

    def run_text(self, model: nn.Module, enc: Any, target: torch.Tensor, params: dict[str, Any],
                 special_ids: dict[str, int] | None) -> TokenScores:
        """Attribute a padded batch of texts (the engine holds the model's lock, in eval mode).

        Parameters
        ----------
        model : nn.Module
            A Hugging Face sequence classifier (or ``VerbalizedLM``).
        enc : kdviz.attribution.text.Encoded
            The encoded batch.
        target : torch.Tensor
            (N,) class explained per text.
        params : dict
            The resolved parameters.
        special_ids : dict or None
            ``"pad"``/``"mask"`` -> token id (the tokenizer's).

        Returns
        -------
        TokenScores
            Token importance, its signed view and the delta.
        """
        raise NotImplementedError(f"{self.name!r} does not attribute texts")


_LOCK = threading.RLock()
_METHODS: dict[Modality, dict[str, AttributionMethod]] = {m: {} for m in Modality}  # name -> method, in order
_KEYS: dict[Modality, dict[str, str]] = {m: {} for m in Modality}  # lower-case name or alias -> name

M = TypeVar("M", bound="AttributionMethod | type[AttributionMethod]")


def _check(method: AttributionMethod) -> None:
    """InvalidInputError when ``method`` cannot be registered as it is."""
    if not isinstance(method, AttributionMethod):
        raise InvalidInputError(f"register_method takes an AttributionMethod, got {type(method).__name__}")
    if not method.name or method.name != method.name.strip():
        raise InvalidInputError(f"{type(method).__name__} has no valid name: {method.name!r}")
    if not method.modalities or not set(method.modalities) <= set(Modality):
        raise InvalidInputError(f"method {method.name!r}: modalities must be Modality values, got {method.modalities!r}")
    if set(method.modalities) & TENSOR_MODALITIES and type(method).run is AttributionMethod.run:
        raise InvalidInputError(f"method {method.name!r} takes images or series but does not override run()")
    if Modality.TEXT in method.modalities and type(method).run_text is AttributionMethod.run_text:
        raise InvalidInputError(f"method {method.name!r} takes texts but does not override run_text()")
    for p in method.params:  # every default must validate against its own spec
        p.validate(p.default, method=method.name)


def _keys_of(method: AttributionMethod) -> list[str]:
    return [k.strip().lower() for k in (method.name, *method.aliases)]


def register_method(method: M | None = None, *, replace: bool = False) -> Any:
    """Register an attribution method for each of its modalities.

    Usable as ``register_method(MyMethod())``, as a class decorator (``@register_method``: an instance of the
    class is registered and the class returned) or ``@register_method(replace=True)``. Thread-safe.

    Parameters
    ----------
    method : AttributionMethod instance or subclass
        What to register; a class is instantiated without arguments.
    replace : bool, default False
        Replace a method registered under the same name (its aliases go with it); without it a name or alias
        already taken for one of the method's modalities is refused.

    Returns
    -------
    AttributionMethod or type
        ``method`` unchanged (so the decorator leaves the class in place).

    Raises
    ------
    InvalidInputError
        A name or alias already taken, or a method that cannot run (no run hook, defaults that do not validate).
    """
    if method is None:
        return functools.partial(register_method, replace=replace)
    instance = method() if isinstance(method, type) else method
    _check(instance)
    keys = _keys_of(instance)
    with _LOCK:
        for modality in instance.modalities:
            if replace and instance.name in _METHODS[modality]:
                _drop(modality, instance.name)
            taken = [k for k in keys if k in _KEYS[modality]]
            if taken:
                raise InvalidInputError(
                    f"{taken[0]!r} is already registered for {modality.value} as method "
                    f"{_KEYS[modality][taken[0]]!r}; pass replace=True to replace it"
                )
        for modality in instance.modalities:
            _METHODS[modality][instance.name] = instance
            _KEYS[modality].update(dict.fromkeys(keys, instance.name))
    return method


def _drop(modality: Modality, name: str) -> None:
    """Remove ``name`` and its aliases from ``modality`` (caller holds the lock)."""
    _METHODS[modality].pop(name)
    for key in [k for k, v in _KEYS[modality].items() if v == name]:
        del _KEYS[modality][key]


def unregister_method(name: str, modality: Modality | str | None = None) -> None:
    """Remove a registered method (and its aliases), for one modality or all of them.

    Parameters
    ----------
    name : str
        The method's name (not an alias).
    modality : Modality or str, optional
        Only this modality; default every modality the name is registered for.

    Raises
    ------
    UnknownNameError
        When ``name`` is registered for none of them.
    """
    modalities = list(Modality) if modality is None else [Modality.parse(modality)]
    with _LOCK:
        found = [m for m in modalities if name in _METHODS[m]]
        if not found:
            raise UnknownNameError(f"no method {name!r} is registered")
        for m in found:
            _drop(m, name)


def _what(modality: Modality) -> str:
    return {Modality.IMAGE: "an image", Modality.SERIES: "a time-series", Modality.TEXT: "a text"}[modality]


def get_method(name: str | AttributionMethod, modality: Modality | str = Modality.IMAGE) -> AttributionMethod:
    """Look up the method registered as ``name`` (or one of its aliases, any case) for ``modality``.

    Parameters
    ----------
    name : str or AttributionMethod
        A method name or alias; a registered method object is returned as it is.
    modality : Modality or str, default Modality.IMAGE
        Whose inputs the method takes (image and series share the tensor methods).

    Returns
    -------
    AttributionMethod

    Raises
    ------
    UnknownNameError
        Listing the valid names and aliases for ``modality``.
    """
    modality = Modality.parse(modality)
    if isinstance(name, AttributionMethod):
        name = name.name
    key = str(name).strip().lower()
    with _LOCK:
        canonical = _KEYS[modality].get(key)
        if canonical is not None:
            return _METHODS[modality][canonical]
        valid = list(_METHODS[modality])
        aliases = sorted(k for k, v in _KEYS[modality].items() if k != v.lower())
    hint = f" (aliases: {', '.join(aliases)})" if aliases else ""
    raise UnknownNameError(f"{name!r} is not {_what(modality)} method; valid: {valid}{hint}")


def method_names(modality: Modality | str = Modality.IMAGE) -> tuple[str, ...]:
    """Names of the methods registered for ``modality``, in registration order.

    Parameters
    ----------
    modality : Modality or str, default Modality.IMAGE

    Returns
    -------
    tuple of str
    """
    modality = Modality.parse(modality)
    with _LOCK:
        return tuple(_METHODS[modality])


_KIND_WORDS = {"cnn": "convolutional networks", "vit": "vision transformers", "series": "time-series models",
               "other": "models without convolutions or attention"}


def unavailable_methods(kinds: Iterable[str], modality: Modality | str = Modality.IMAGE) -> dict[str, str]:
    """Say why each registered method that does not apply to every model kind of a set is greyed out.

    Parameters
    ----------
    kinds : iterable of str
        The model kinds of a model set (``kdviz.attribution.vision_transformer.model_kind``); a set mixing a ViT
        teacher with CNN students greys out both sides' methods.
    modality : Modality or str, default Modality.IMAGE

    Returns
    -------
    dict
        Method name -> reason, with the kinds it does not apply to.
    """
    kinds = sorted(set(kinds))
    out = {}
    for name in method_names(modality):
        method = get_method(name, modality)
        reasons = [method.reason_not_applicable(k) for k in kinds]
        bad = [k for k, r in zip(kinds, reasons, strict=True) if r]
        if bad:
            out[name] = next(r for r in reasons if r) + f" ({', '.join(_KIND_WORDS.get(k, k) for k in bad)})"
    return out


def method_label(name: str, label: str, unavailable: dict[str, str]) -> str:
    """Label a method for a selectbox, marked when it does not apply: ``Attention rollout (n/a)``.

    Parameters
    ----------
    name, label : str
        The method's name and display label.
    unavailable : dict
        What :func:`unavailable_methods` returned.

    Returns
    -------
    str
    """
    return f"{label} (n/a)" if name in unavailable else label
