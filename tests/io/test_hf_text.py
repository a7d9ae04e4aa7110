"""Hugging Face text checkpoints: a tiny save_pretrained model round-trips; hostile folders are refused."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from kdviz.io.hf_text import HFTextError, is_hf_text_source, load_hf_text
from tests.text_models import save_tiny, tiny_bert, tiny_tokenizer


def _zip(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"model/{p.name}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def _logits(model, text: str = "the movie was great") -> torch.Tensor:
    enc = tiny_tokenizer()(text, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


def test_folder_and_zip_round_trip(tmp_path):
    folder = save_tiny(tmp_path / "tiny", seed=3)
    assert is_hf_text_source(folder)
    loaded = load_hf_text(folder)
    torch.testing.assert_close(_logits(loaded.model), _logits(tiny_bert(3)))
    assert loaded.arch == "bert-L2-H32" and loaded.num_labels == 2 and loaded.labels == ("c0", "c1")
    assert loaded.weights_file == "model.safetensors" and len(loaded.sha256) == 64
    data = _zip(folder)
    (tmp_path / "tiny.zip").write_bytes(data)
    assert is_hf_text_source(tmp_path / "tiny.zip")
    for source in (data, tmp_path / "tiny.zip"):
        torch.testing.assert_close(_logits(load_hf_text(source).model), _logits(tiny_bert(3)))


def test_pytorch_model_bin_through_weights_only(tmp_path):
    folder = save_tiny(tmp_path / "bin", seed=4)
    (folder / "model.safetensors").unlink()
    torch.save(tiny_bert(4).state_dict(), folder / "pytorch_model.bin")
    loaded = load_hf_text(folder)
    assert loaded.weights_file == "pytorch_model.bin"
    torch.testing.assert_close(_logits(loaded.model), _logits(tiny_bert(4)))


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickle_with_code_in_bin_is_refused(tmp_path):
    folder = save_tiny(tmp_path / "evil")
    (folder / "model.safetensors").unlink()
    torch.save({"x": _Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(HFTextError, match="weights_only"):
        load_hf_text(folder)


@pytest.mark.parametrize(("file", "patch", "match"), [
    ("config.json", {"auto_map": {"AutoModel": "evil.Model"}}, "custom code"),
    ("config.json", {"vocab_size": 10_000_000}, "vocab_size"),
    ("config.json", {"model_type": "llama"}, "not supported"),
    ("tokenizer_config.json", {"vocab_file": "/etc/passwd"}, "outside the upload"),
    ("tokenizer_config.json", {"tokenizer_file": "../../secret/tokenizer.json"}, "outside the upload"),
])
def test_hostile_configs_are_refused(tmp_path, file, patch, match):
    folder = save_tiny(tmp_path / "m")
    obj = json.loads((folder / file).read_text())
    obj.update(patch)
    (folder / file).write_text(json.dumps(obj))
    with pytest.raises(HFTextError, match=match):
        load_hf_text(folder)


def test_oversized_vocabulary_and_links_are_refused(tmp_path):
    folder = save_tiny(tmp_path / "big")
    with pytest.raises(HFTextError, match="vocabulary|vocab"):
        load_hf_text(folder, max_vocab=20)  # the tiny model has 39 pieces
    linked = save_tiny(tmp_path / "linked")
    (linked / "notes.txt").symlink_to("/etc/hostname")
    with pytest.raises(HFTextError, match="link"):
        load_hf_text(linked)


def test_zip_escaping_its_folder_is_refused(tmp_path):
    data = _zip(save_tiny(tmp_path / "z"), {"../escape.txt": b"x"})
    with pytest.raises(ValueError, match="escapes"):
        load_hf_text(data)
