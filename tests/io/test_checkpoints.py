"""kdviz.io.checkpoints: every format and container round-trips; hostile and broken files are refused."""

import io
import os
import pickle
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save as save_safetensors

from kdviz.errors import CheckpointError
from kdviz.io.checkpoints import load_checkpoint
from kdviz.models import create_model


def _model(arch, **kw):
    torch.manual_seed(0)
    model = create_model(arch, **kw).eval()
    # Non-trivial BatchNorm statistics, so a lost buffer would change the outputs.
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def _torch_bytes(obj, *, legacy=False):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


MODELS = {
    "resnet20": (dict(num_classes=10, in_channels=1), (2, 1, 28, 28)),
    "resnet18": (dict(num_classes=10, in_channels=3), (2, 3, 64, 64)),
    "fcn_w16": (dict(num_classes=3, in_channels=2), (2, 2, 40)),
}

CONTAINERS = {
    "plain": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 7, "optimizer": {"lr": 0.1}},
    "model": lambda sd: {"model": sd, "args": {"lr": 0.1}},
    "net": lambda sd: {"net": sd, "acc": 0.9},
    "model_state_dict": lambda sd: {"model_state_dict": sd, "step": 3},
    "module_prefix": lambda sd: {"module." + k: v for k, v in sd.items()},
    "lightning": lambda sd: {"state_dict": {"model." + k: v for k, v in sd.items()}, "global_step": 10},
    "compiled_ddp": lambda sd: {"module._orig_mod." + k: v for k, v in sd.items()},
}


FLAT = ("plain", "module_prefix", "compiled_ddp")  # safetensors holds a flat tensor dict only
CASES = [
    (arch, fmt, container)
    for arch in ("resnet20", "fcn_w16")
    for fmt in ("safetensors", "zip", "legacy")
    for container in CONTAINERS
    if fmt != "safetensors" or container in FLAT
] + [("resnet18", "safetensors", "plain"), ("resnet18", "zip", "state_dict"), ("resnet18", "legacy", "module_prefix")]


@pytest.mark.parametrize(("arch", "fmt", "container"), CASES)
def test_round_trip_every_format_and_container(arch, fmt, container):
    kwargs, input_shape = MODELS[arch]
    model = _model(arch, **kwargs)
    state = CONTAINERS[container](model.state_dict())
    if fmt == "safetensors":
        data = save_safetensors({k: v.contiguous() for k, v in state.items()})
    else:
        data = _torch_bytes(state, legacy=fmt == "legacy")
    loaded = load_checkpoint(data)
    assert loaded.arch == arch and loaded.arch_guessed
    assert (loaded.num_classes, loaded.in_channels) == (kwargs["num_classes"], kwargs["in_channels"])
    assert loaded.format == ("safetensors" if fmt == "safetensors" else "state_dict")
    assert not loaded.module.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[key], value), key
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt", ".safetensors"])
def test_paths_with_every_extension(tmp_path, suffix):
    model = _model("resnet8", num_classes=4, in_channels=1)
    path = tmp_path / f"resnet8_alpha0.5{suffix}"
    if suffix == ".safetensors":
        path.write_bytes(save_safetensors(model.state_dict()))
    else:
        torch.save({"state_dict": model.state_dict()}, path)
    loaded = load_checkpoint(path)
    assert loaded.arch == "resnet8" and loaded.num_classes == 4
    import hashlib

    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [("resnet18", {}), ("resnet34", {}), ("resnet50", {}), ("resnet101", {}),
     ("resnet8", {"in_channels": 1}), ("resnet20", {}), ("resnet56", {}), ("resnet110", {}), ("resnet8x4", {}),
     ("fcn", {}), ("resnet1d_w16", {"in_channels": 3})],
)
def test_architecture_guessed_from_keys_and_shapes(arch, kwargs):
    state = create_model(arch, num_classes=10, **kwargs).state_dict()
    loaded = load_checkpoint(_torch_bytes(state))
    assert loaded.arch == arch
    assert "architecture guessed from the weights: " + arch in loaded.warnings


def test_wrong_arch_names_the_likely_one():
    data = _torch_bytes(create_model("resnet34", num_classes=10).state_dict())
    with pytest.raises(CheckpointError, match="this looks like resnet34, not resnet18"):
        load_checkpoint(data, arch="resnet18")
    data = _torch_bytes(create_model("resnet18", num_classes=10).state_dict())
    with pytest.raises(CheckpointError, match=r"missing keys layer1\.2\.\*.*this looks like resnet18, not resnet34"):
        load_checkpoint(data, arch="resnet34")
    data = _torch_bytes(create_model("resnet20", num_classes=10).state_dict())
    with pytest.raises(CheckpointError, match="this looks like resnet20, not resnet56"):
        load_checkpoint(data, arch="resnet56")


def test_dimension_mismatch_and_unknown_arch_are_explained():
    data = _torch_bytes(create_model("resnet8", num_classes=10, in_channels=1).state_dict())
    with pytest.raises(CheckpointError, match="num_classes=100 was given but the weights have num_classes=10"):
        load_checkpoint(data, num_classes=100)
    with pytest.raises(CheckpointError, match="in_channels=3 was given but the weights have in_channels=1"):
        load_checkpoint(data, in_channels=3)
    with pytest.raises(CheckpointError, match="unknown architecture 'resnet9'"):
        load_checkpoint(data, arch="resnet9")


def test_half_precision_weights_load_as_float32_with_a_note():
    model = _model("resnet8", num_classes=10, in_channels=1)
    data = save_safetensors({k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()})
    loaded = load_checkpoint(data)
    assert loaded.module.conv1.weight.dtype == torch.float32
    assert torch.allclose(loaded.module.conv1.weight, model.conv1.weight, atol=1e-3)
    assert any("float16" in w for w in loaded.warnings)


def test_missing_num_batches_tracked_is_tolerated():
    state = {k: v for k, v in create_model("resnet8", num_classes=10).state_dict().items() if "num_batches" not in k}
    loaded = load_checkpoint(_torch_bytes(state), arch="resnet8")
    assert loaded.arch == "resnet8"  # older checkpoints lack these buffers; inference does not use them


# ---------------------------------------------------------------- hostile and broken files


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import builtins

        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


EXPLOITS = {
    "os.system": lambda m: _torch_bytes({"fc.weight": _System(m)}),
    "builtins.eval": lambda m: _torch_bytes(_Eval(m)),
    "subprocess.Popen": lambda m: _torch_bytes({"state_dict": {"a": torch.zeros(1)}, "hook": _Popen(m)}),
    "nested container": lambda m: _torch_bytes({"model": {"net": [1, {"x": _System(m)}]}}),
    "legacy format": lambda m: _torch_bytes({"x": _System(m)}, legacy=True),
    "raw pickle": lambda m: pickle.dumps(_System(m), protocol=2),
    "protocol 5": lambda m: pickle.dumps({"w": _System(m)}, protocol=5),
}


@pytest.mark.parametrize("variant", EXPLOITS)
def test_pickle_exploits_never_run(tmp_path, variant):
    marker = tmp_path / "pwned"
    data = EXPLOITS[variant](marker)
    with pytest.raises(CheckpointError, match="refused") as info:
        load_checkpoint(data)
    assert "weights_only" not in str(info.value)  # never advise unsafe loading
    assert not marker.exists()


def test_pickle_exploit_refused_by_cli(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(EXPLOITS["os.system"](marker))
    proc = subprocess.run([sys.executable, "-m", "kdviz", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    assert "refused" in proc.stderr and "posix.system" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x80\x02", "truncated or damaged"),
        (bytes(range(256)) * 4, "not a checkpoint"),
        (b"PK\x03\x04garbage", "damaged zip"),
        (b"just some text\n", "not a checkpoint"),
    ],
)
def test_broken_bytes_raise_checkpoint_error(data, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(data)


def test_truncated_checkpoints_raise_checkpoint_error():
    state = create_model("resnet8", num_classes=10).state_dict()
    for data in (_torch_bytes(state), _torch_bytes(state, legacy=True), save_safetensors(state)):
        with pytest.raises(CheckpointError):
            load_checkpoint(data[: len(data) // 2])


def test_missing_path_and_non_state_dict():
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint("/nonexistent/model.pth")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(_torch_bytes([1, 2, 3]))
    with pytest.raises(CheckpointError, match="no state dict found"):
        load_checkpoint(_torch_bytes({"epoch": 3, "lr": 0.1}))


def test_programs_need_trust_code(tmp_path):
    model = _model("resnet8", num_classes=10, in_channels=1)
    scripted = io.BytesIO()
    torch.jit.save(torch.jit.script(model), scripted)
    with pytest.raises(CheckpointError, match="TorchScript program.*trust_code=True"):
        load_checkpoint(scripted.getvalue())
    loaded = load_checkpoint(scripted.getvalue(), trust_code=True)
    assert loaded.format == "torchscript" and loaded.num_classes == 10 and loaded.in_channels == 1
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), model(x), atol=1e-5)

    exported = io.BytesIO()
    torch.export.save(torch.export.export(model, (x,)), exported)
    with pytest.raises(CheckpointError, match="torch.export program.*trust_code=True"):
        load_checkpoint(exported.getvalue())
    loaded = load_checkpoint(exported.getvalue(), trust_code=True)
    assert loaded.format == "torch_export"
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), model(x), atol=1e-5)


# ---------------------------------------------------------------- containers of the distillation codebases


def test_namespace_options_load_and_the_allow_list_is_scoped():
    """RepDistiller's *_last.pth holds {'opt': Namespace, 'model': …}; Namespace is allowed for that load only."""
    import argparse

    model = _model("resnet8", num_classes=10, in_channels=1)
    opt = argparse.Namespace(model_s="resnet8", distill="kd", alpha=0.9, gamma=0.1, kd_T=4, lr_decay_epochs=[150, 180])
    loaded = load_checkpoint(_torch_bytes({"opt": opt, "model": model.state_dict()}))
    assert loaded.arch == "resnet8"
    assert {k: loaded.metadata[k] for k in ("opt.model_s", "opt.alpha", "opt.kd_T")} == {
        "opt.model_s": "resnet8", "opt.alpha": 0.9, "opt.kd_T": 4}
    assert argparse.Namespace not in torch.serialization.get_safe_globals()
    with pytest.raises(pickle.UnpicklingError):  # plain torch.load still refuses it: kdviz changed nothing globally
        torch.load(io.BytesIO(_torch_bytes({"opt": opt})), weights_only=True)


def test_tensor_metadata_is_read_as_numbers_and_not_taken_for_a_state_dict():
    """{'model': sd, 'accuracy': tensor([73.5]), 'epoch': 240}: two of three values are tensors-or-numbers,
    yet it is a container (the nested state dict decides), and the 1-element tensor is shown as 73.5."""
    state = create_model("resnet8", num_classes=10).state_dict()
    loaded = load_checkpoint(_torch_bytes({"model": state, "accuracy": torch.tensor([73.5]), "best_acc": torch.tensor(74.0)}))
    assert loaded.arch == "resnet8" and loaded.metadata == {"accuracy": 73.5, "best_acc": 74.0}
    assert "file says accuracy = 73.5" in "; ".join(loaded.details())


def test_pytorch_0_4_checkpoints_without_num_batches_tracked_load_strictly_guessed():
    model = _model("wrn_16_1", num_classes=100)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    loaded = load_checkpoint(_torch_bytes({"model": state, "epoch": 240}))
    assert loaded.arch == "wrn_16_1"
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


def test_extension_less_file_is_sniffed_by_content(tmp_path):
    folder = tmp_path / "cifar100_baselines" / "kd,res32x4,res8x4"
    folder.mkdir(parents=True)
    torch.save({"model": create_model("resnet8x4", num_classes=100).state_dict()}, folder / "student_240")
    assert load_checkpoint(folder / "student_240").arch == "resnet8x4"
    save_path = folder / "student_best"
    save_path.write_bytes(save_safetensors(create_model("ShuffleV2", num_classes=100).state_dict()))
    loaded = load_checkpoint(save_path)
    assert (loaded.arch, loaded.format) == ("ShuffleV2", "safetensors")


def test_part_that_is_not_there_is_explained():
    data = _torch_bytes(create_model("resnet8", num_classes=10).state_dict())
    with pytest.raises(CheckpointError, match="part='teacher' is not in the file; it holds one model"):
        load_checkpoint(data, part="teacher")


def _mnasnet_bytes(wrap: str) -> tuple[torch.nn.Module, bytes]:
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.mnasnet0_5(num_classes=10).eval()
    sd = net.state_dict()
    buf = io.BytesIO()
    if wrap == "safetensors":
        return net, save_safetensors({k: v.contiguous() for k, v in sd.items()})
    if wrap == "module":  # DataParallel: every key and every module version under "module."
        wrapped = torch.nn.DataParallel(net).state_dict()
        torch.save({"state_dict": wrapped, "epoch": 3}, buf)
    elif wrap == "distiller":  # mdistiller: student and teacher in one state dict
        both = torch.nn.ModuleDict({"student": net, "teacher": net}).state_dict()
        torch.save(both, buf)
    else:
        torch.save(sd, buf)
    return net, buf.getvalue()


@pytest.mark.parametrize("wrap", ["plain", "module", "distiller", "safetensors"])
def test_module_versions_survive_loading(wrap):
    """torch keeps each module's state-dict version in ``_metadata``; MNASNet refuses to load without it
    ("version should be set to 1 or 2 instead of None"), so unwrapping, prefix stripping and part splitting keep it."""
    net, data = _mnasnet_bytes(wrap)
    lc = load_checkpoint(data, arch="mnasnet0_5")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(lc.module(x), net(x))
