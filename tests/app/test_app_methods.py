"""AppTest: the sidebar greys out attribution methods that do not apply to the model set, and says why."""

from streamlit.testing.v1 import AppTest

from kdviz.attribution.engine import METHODS
from kdviz.attribution.vision_transformer import method_label, unavailable_methods


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
    assert any("does not apply to this model set" in i and METHODS["attention_rollout"].not_applicable in i for i in infos)
