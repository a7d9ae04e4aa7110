"""GPT-2 and T5 checkpoints read as classifiers: round trips against transformers called directly; refusals."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from kdviz.io.hf_text import HFTextError, load_hf_text
from kdviz.models.hf_text import Verbalizer, save_hf_folder
from tests.generative_models import gpt2_tokenizer, save_generative, t5_tokenizer, tiny_gpt2, tiny_t5

TEXT = "the movie was witty, not boring"


def _reference(kind: str, seed: int, template: str, tokens: tuple[str, ...]) -> torch.Tensor:
    """The verbalizer tokens' logits from the language model called directly on the prompted text."""
    tok = gpt2_tokenizer() if kind == "gpt2" else t5_tokenizer()
    ids = [tok(t, add_special_tokens=False)["input_ids"][0] for t in tokens]
    enc = tok(template.replace("{text}", TEXT), return_tensors="pt")
    with torch.no_grad():
        if kind == "gpt2":
            return tiny_gpt2(seed)(**enc).logits[0, -1, ids]
        return tiny_t5(seed)(**enc, decoder_input_ids=torch.zeros(1, 1, dtype=torch.long)).logits[0, 0, ids]


def _logits(loaded) -> torch.Tensor:
    enc = loaded.tokenizer.tokenizer(loaded.verbalizer.template.replace("{text}", TEXT), return_tensors="pt")
    with torch.no_grad():
        return loaded.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]


def _zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"model/{p.name}")
    return buf.getvalue()


@pytest.mark.parametrize(("kind", "tokens", "template", "summary"), [
    ("gpt2", (" fresh", " rotten"), "predict: {text}\nlabel:", {"kind": "decoder", "arch": "gpt2-L1-H32"}),
    ("t5", ("fresh", "rotten"), "predict: {text}", {"kind": "encoder-decoder", "arch": "t5-L1-H32"}),
])
def test_folder_and_zip_round_trip(tmp_path, kind, tokens, template, summary):
    folder = save_generative(tmp_path / kind, kind, seed=5)
    loaded = load_hf_text(folder)
    assert loaded.labels == ("fresh", "rotten") and loaded.num_labels == 2
    assert loaded.verbalizer.tokens == tokens and loaded.verbalizer.template == template
    info = loaded.summary()
    assert {k: info[k] for k in summary} == summary
    assert info["verbalizer"] == dict(zip(("fresh", "rotten"), tokens, strict=True)) and len(info["sha256"]) == 64
    expected = _reference(kind, 5, template, tokens)
    torch.testing.assert_close(_logits(loaded), expected)
    torch.testing.assert_close(_logits(load_hf_text(_zip(folder))), expected)


def test_verbalizer_and_prompt_passed_by_the_user(tmp_path):
    folder = save_generative(tmp_path / "g", "gpt2", seed=6, labels=False)
    with pytest.raises(HFTextError, match="verbalizer"):
        load_hf_text(folder)  # LABEL_0 / LABEL_1: no class names to build tokens from
    template = "Review: {text}\nSentiment:"
    loaded = load_hf_text(folder, verbalizer={"pos": " great", "neg": " bad"}, template=template)
    assert loaded.labels == ("pos", "neg") and loaded.verbalizer.template == template
    torch.testing.assert_close(_logits(loaded), _reference("gpt2", 6, template, (" great", " bad")))
    as_object = Verbalizer(("pos", "neg"), (" great", " bad"), template)
    assert load_hf_text(folder, verbalizer=as_object).verbalizer.ids == loaded.verbalizer.ids
    with pytest.raises(HFTextError, match="is 2 tokens"):
        load_hf_text(folder, verbalizer={"fresh": "fresh", "rotten": "rotten"})  # "rotten" = "rot" "ten"
    with pytest.raises(HFTextError, match=r"\{text\}"):
        load_hf_text(folder, verbalizer={"pos": " great", "neg": " bad"}, template="no slot")


def test_verbalizer_saved_in_config_json_round_trips(tmp_path):
    folder = save_generative(tmp_path / "t", "t5", seed=7, labels=False)
    loaded = load_hf_text(folder, verbalizer={"good": "great", "poor": "bad"})
    save_hf_folder(loaded.model, loaded.tokenizer, tmp_path / "again", dtype=torch.float32)
    assert "kdviz_verbalizer" in json.loads((tmp_path / "again" / "config.json").read_text())
    again = load_hf_text(tmp_path / "again")
    assert again.verbalizer == loaded.verbalizer and again.labels == ("good", "poor")
    torch.testing.assert_close(_logits(again), _logits(loaded))


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize(("patch", "match"), [
    ({"auto_map": {"AutoModelForCausalLM": "evil.Model"}}, "custom code"),
    ({"vocab_size": 10_000_000}, "vocab_size"),
    ({"model_type": "llama"}, "not supported"),
    ({"kdviz_verbalizer": {"labels": ["a"], "tokens": ["a"], "template": "{text}"}}, "kdviz_verbalizer"),
    ({"kdviz_verbalizer": {"labels": ["a", "b"], "tokens": ["a", "b"], "template": "{text}{text}"}}, "kdviz_verbalizer"),
    ({"tokenizer_file": "../../x/tokenizer.json"}, "outside the upload"),
    ({"eos_token_id": 10**9}, "eos_token_id"),
])
def test_hostile_generative_configs_are_refused(tmp_path, patch, match):
    folder = save_generative(tmp_path / "m", "gpt2")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(patch)
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HFTextError, match=match):
        load_hf_text(folder)


def test_generative_bin_goes_through_weights_only(tmp_path):
    folder = save_generative(tmp_path / "bin", "t5", seed=8)
    (folder / "model.safetensors").unlink()
    torch.save(tiny_t5(8).state_dict(), folder / "pytorch_model.bin")
    torch.testing.assert_close(_logits(load_hf_text(folder)), _reference("t5", 8, "predict: {text}", ("fresh", "rotten")))
    torch.save({"x": _Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(HFTextError, match="weights_only"):
        load_hf_text(folder)


def test_missing_weights_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_generative(tmp_path / "cut", "gpt2")
    state = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in state.items() if ".h.0.attn." not in k}, folder / "model.safetensors")
    with pytest.raises(HFTextError, match="lacks .* gpt2 language model"):
        load_hf_text(folder)


def test_oversized_vocab_json_is_refused(tmp_path):
    folder = save_generative(tmp_path / "v", "gpt2")
    (folder / "vocab.json").write_text(json.dumps({f"t{i}": i for i in range(400)}))
    with pytest.raises(HFTextError, match="vocab.json has 400 entries"):
        load_hf_text(folder, max_vocab=390)
    (folder / "vocab.json").write_text("[1, 2]")
    with pytest.raises(HFTextError, match="vocab.json is not a JSON object"):
        load_hf_text(folder)
