"""kdviz.attribution.registry: a user's own method registered in the test works in ``kdviz.attribute`` and
``kdviz.compare_models`` with no edit to kdviz; names, aliases, duplicates, threads, unregistering; every
registered method's parameter defaults validate."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from torch import nn

import kdviz
from kdviz.analysis.compare import CompareOptions, NullOptions
from kdviz.attribution.methods import (
    AttributionMethod,
    ParamSpec,
    get_method,
    method_names,
    register_method,
    unregister_method,
)
from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.vocab import Modality

IMAGE_METHODS = ("saliency", "integrated_gradients", "input_x_gradient", "smoothgrad", "gradient_shap", "deeplift",
                 "occlusion", "grad_cam", "attention_rollout")
TEXT_METHODS = ("integrated_gradients", "grad_x_embedding", "gradient_norm", "word_occlusion", "attention_rollout")


class GradientTimesSign(AttributionMethod):
    """A user's method: the gradient of the target logit times the sign of the input, scaled."""

    name = "gradient_x_sign"
    label = "Gradient × sign"
    aliases = ("gxs",)
    params = (ParamSpec("scale", "float", 1.0, min=0.0, max=10.0, help="factor on the map"),)
    description = "gradient of the target logit times the sign of the input"
    needs_input_grad = True

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> tuple[torch.Tensor, None]:
        logits = model(x)
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
        return grad * x.sign() * params["scale"], None


@pytest.fixture
def user_method():
    method = register_method(GradientTimesSign())
    try:
        yield method
    finally:
        unregister_method(method.name)


def tiny(in_channels: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3))


def test_a_users_method_works_in_attribute(user_method) -> None:
    model = tiny(2, 0)
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 2, 1])
    got = kdviz.attribute(model, x, method="gradient_x_sign", target=t, device="cpu", scale=2.0)
    expected = Saliency(model).attribute(x.clone(), target=t, abs=False) * x.sign() * 2.0
    np.testing.assert_allclose(got.raw, expected.detach().numpy(), rtol=1e-6, atol=1e-8)
    assert got.method == "gradient_x_sign" and got.params == {"scale": 2.0}
    np.testing.assert_allclose(got.importance, np.abs(got.raw).sum(axis=1))
    by_alias = kdviz.attribute(model, x, method="GXS", target=t, device="cpu", scale=2.0)
    np.testing.assert_array_equal(by_alias.raw, got.raw)
    series = kdviz.attribute(nn.Sequential(nn.Flatten(), nn.Linear(10, 3)), torch.ones(2, 2, 5),
                             method="gradient_x_sign", target=0, device="cpu")
    assert series.raw.shape == (2, 2, 5)  # image and series share the tensor methods
    with pytest.raises(InvalidInputError, match="scale"):
        kdviz.attribute(model, x, method="gradient_x_sign", target=t, scale=-1.0)


def test_a_users_method_works_in_compare_models(user_method) -> None:
    teacher = SimpleNamespace(id="t", arch="tiny", alpha=None, module=tiny(1, 0), role="teacher")
    student = SimpleNamespace(id="s", arch="tiny", alpha=0.5, module=tiny(1, 1))
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    cmp = kdviz.compare_models(teacher, [student], x, method="gradient_x_sign", parts="grid:2x2", k=2,
                               options=CompareOptions(device="cpu", null=NullOptions(copies=0)))
    assert set(cmp.frame["attr_method"]) == {"gradient_x_sign"}
    teacher_rows = cmp.frame[cmp.frame.model_id == "t"]
    np.testing.assert_allclose(teacher_rows["attention_rho"], 1.0, atol=1e-6)
    assert cmp.frame.loc[cmp.frame.model_id == "s", "attention_rho"].notna().all()
    target = cmp.logits["t"].argmax(1)  # every model explains the teacher's predicted class
    direct = kdviz.attribute(student.module, x, method="gradient_x_sign", target=target, device="cpu")
    np.testing.assert_allclose(cmp.attributions["s"].raw, direct.raw, rtol=1e-6, atol=1e-8)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_method("lime")
    assert "'lime' is not an image method" in str(err.value)
    assert all(name in str(err.value) for name in IMAGE_METHODS) and "ig" in str(err.value)
    with pytest.raises(UnknownNameError, match="grad_x_embedding"):
        get_method("grad_cam", Modality.TEXT)
    with pytest.raises(ValueError, match="'lime'"):  # still a ValueError for callers that catch those
        kdviz.attribute(tiny(1, 0), torch.zeros(1, 1, 8, 8), method="lime", target=0)


def test_aliases_and_case() -> None:
    assert get_method("IG") is get_method(" integrated_gradients ") is get_method("ig", "series")
    assert get_method("sg").name == "smoothgrad" and get_method("ixg").name == "input_x_gradient"
    assert get_method("gradcam").name == "grad_cam" and get_method("shap").name == "gradient_shap"
    assert get_method("ig", Modality.TEXT).name == "integrated_gradients"
    assert get_method("ig", Modality.TEXT) is not get_method("ig")  # one per input kind
    assert get_method("saliency", "text").name == "grad_x_embedding"  # a text alias; the image method is its own
    assert get_method("saliency").name == "saliency"
    assert get_method(get_method("grad_cam")) is get_method("grad_cam")


def test_listing_order_is_registration_order(user_method) -> None:
    assert method_names(Modality.IMAGE) == (*IMAGE_METHODS, "gradient_x_sign")
    assert method_names(Modality.SERIES) == method_names(Modality.IMAGE)
    assert method_names(Modality.TEXT) == TEXT_METHODS


def test_duplicates_are_refused_unless_replaced(user_method) -> None:
    with pytest.raises(InvalidInputError, match="already registered"):
        register_method(GradientTimesSign())

    class Clash(GradientTimesSign):
        name = "another"
        aliases = ("ig",)  # integrated_gradients' alias

    with pytest.raises(InvalidInputError, match="'ig' is already registered"):
        register_method(Clash())
    assert "another" not in method_names()

    class Louder(GradientTimesSign):
        label = "Gradient × sign (louder)"

    register_method(Louder(), replace=True)
    assert get_method("gxs").label == "Gradient × sign (louder)"
    assert method_names().count("gradient_x_sign") == 1


def test_decorator_and_checks() -> None:
    @register_method
    class Doubled(GradientTimesSign):
        name = "doubled"
        aliases = ()

    try:
        assert isinstance(Doubled, type) and isinstance(get_method("doubled"), Doubled)
    finally:
        unregister_method("doubled")

    class NoRun(AttributionMethod):
        name = "no_run"

    class TextWithoutHook(GradientTimesSign):
        name = "text_without_hook"
        modalities = frozenset({Modality.TEXT})

    class BadDefault(GradientTimesSign):
        name = "bad_default"
        params = (ParamSpec("scale", "float", 20.0, min=0.0, max=10.0),)

    for bad, message in ((NoRun, "run"), (TextWithoutHook, "run_text"), (BadDefault, "scale")):
        with pytest.raises(InvalidInputError, match=message):
            register_method(bad)
        assert bad.name not in method_names() and bad.name not in method_names(Modality.TEXT)


def test_unregister_cleans_up() -> None:
    register_method(GradientTimesSign())
    unregister_method("gradient_x_sign")
    assert "gradient_x_sign" not in method_names()
    for name in ("gradient_x_sign", "gxs"):
        with pytest.raises(UnknownNameError):
            get_method(name)
    with pytest.raises(UnknownNameError):
        unregister_method("gradient_x_sign")
    register_method(GradientTimesSign())  # the name and alias are free again
    unregister_method("gradient_x_sign", Modality.IMAGE)
    assert get_method("gxs", Modality.SERIES).name == "gradient_x_sign"  # still there for series
    unregister_method("gradient_x_sign")
    assert "gradient_x_sign" not in method_names(Modality.SERIES)


def test_registration_is_thread_safe() -> None:
    """Threads registering their own methods while others look names up: every one lands, none is lost."""
    n = 16
    classes = [type(f"Mine{i}", (GradientTimesSign,), {"name": f"mine_{i}", "aliases": (f"m{i}",)}) for i in range(n)]
    barrier = threading.Barrier(2 * n)
    errors: list[BaseException] = []
    seen: list[str] = []

    def register(cls: type) -> None:
        try:
            barrier.wait()
            register_method(cls)
        except BaseException as err:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(err)

    def look_up() -> None:
        try:
            barrier.wait()
            for _ in range(50):
                seen.append(get_method("ig").name)
                method_names()
        except BaseException as err:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=register, args=(c,)) for c in classes]
    threads += [threading.Thread(target=look_up) for _ in range(n)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        assert set(seen) == {"integrated_gradients"}
        names = method_names()
        assert len(names) == len(set(names)) and {f"mine_{i}" for i in range(n)} <= set(names)
        assert all(get_method(f"m{i}").name == f"mine_{i}" for i in range(n))
    finally:
        for i in range(n):
            if f"mine_{i}" in method_names():
                unregister_method(f"mine_{i}")


REGISTERED = [(m, name) for m in Modality for name in method_names(m)]


@pytest.mark.parametrize(("modality", "name"), REGISTERED, ids=[f"{m.value}-{n}" for m, n in REGISTERED])
def test_every_registered_method_is_complete_and_its_defaults_validate(modality: Modality, name: str) -> None:
    method = get_method(name, modality)
    assert method.name == name and modality in method.modalities and method.label and method.description
    assert method.resolve({}) == method.defaults()
    assert len({p.name for p in method.params}) == len(method.params)
    for p in method.params:
        assert p.kind in ("int", "float", "choice", "bool") and p.help
        assert p.validate(p.default, method=name) == p.default
        if p.kind == "choice":
            assert p.default in p.choices
        if p.min is not None:
            assert p.min <= p.default <= p.max
    if method.not_applicable == "":
        assert set(method.applies_to) >= {"cnn", "vit", "series", "other"}
