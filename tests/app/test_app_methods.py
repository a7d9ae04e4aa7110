"""AppTest: the sidebar greys out attribution methods that do not apply to the model set, and says why."""

import torch
from streamlit.testing.v1 import AppTest

from kdviz.attribution.methods import (
    AttributionMethod,
    ParamSpec,
    get_method,
    method_label,
    register_method,
    unavailable_methods,
    unregister_method,
)


def test_unavailable_methods_follow_the_model_kinds():
    assert set(unavailable_methods({"cnn"})) == {"attention_rollout"}
    assert set(unavailable_methods({"vit"})) == {"deeplift"}
    mixed = unavailable_methods({"cnn", "vit"})  # a ViT teacher with CNN students: neither side's exclusive method
    assert set(mixed) == {"attention_rollout", "deeplift"} and "convolutional networks" in mixed["attention_rollout"]
    assert method_label("attention_rollout", "Attention rollout", mixed) == "Attention rollout (n/a)"
    assert method_label("saliency", "Saliency", mixed) == "Saliency"


def test_sidebar_marks_rollout_not_applicable_on_the_cnn_demo(app_path):
    at = AppTest.from_file(app_path, default_timeout=240)
    at.run()
    box = at.sidebar.selectbox(key="kdviz_method")
    assert "Attention rollout (n/a)" in box.options and "Grad-CAM" in box.options
    box.set_value("attention_rollout").run()
    infos = [i.value for i in at.sidebar.info]
    assert any("does not apply to this model set" in i and get_method("attention_rollout").not_applicable in i for i in infos)


def test_sidebar_lists_a_registered_method_with_its_widgets(app_path):
    """A method registered in the user's own code appears in the sidebar with a widget per parameter."""

    class ScaledGradient(AttributionMethod):
        name = "scaled_gradient"
        label = "Scaled gradient"
        params = (ParamSpec("factor", "float", 2.0, min=0.0, max=10.0, help="factor on the gradient"),)
        description = "the gradient of the target logit, scaled"
        needs_input_grad = True

        def run(self, model, x, target, params, rows):
            (grad,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
            return grad * params["factor"], None

    register_method(ScaledGradient())
    try:
        at = AppTest.from_file(app_path, default_timeout=240)
        at.run()
        box = at.sidebar.selectbox(key="kdviz_method")
        assert "Scaled gradient" in box.options
        box.set_value("scaled_gradient").run()
        assert not at.exception
        assert "factor" in [w.label for w in at.sidebar.number_input]
        assert any("scaled" in c.value for c in at.sidebar.caption)
    finally:
        unregister_method("scaled_gradient")
