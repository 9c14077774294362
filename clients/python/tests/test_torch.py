"""embedeval.torch against the real server, with a stand-in for torch (the
test environment has no PyTorch): the stand-in's onnx.export writes a real
ONNX file (a bundled model's), so registering and evaluating are real."""
from __future__ import annotations

import shutil
import sys
import types

import pytest

import embedeval
from conftest import REPO

ONNX = REPO / "models" / "infonce-t0.5" / "model.onnx"
CARD = "[input]\nscale = 0.0625\nmean = [0.0]\nstd = [1.0]\n"


class _Tensor:
    pass


class _NoGrad:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Module:
    def __init__(self, outputs: int) -> None:
        self.training = True
        self.outputs = outputs
        self.modes = []

    def eval(self):
        self.training = False
        self.modes.append("eval")
        return self

    def train(self, mode=True):
        self.training = mode
        self.modes.append(f"train({mode})")
        return self

    def __call__(self, x):
        return _Tensor() if self.outputs == 1 else tuple(_Tensor() for _ in range(self.outputs))


@pytest.fixture()
def fake_torch(monkeypatch):
    calls = []

    def export(module, args, f, export_params=True, opset_version=None, do_constant_folding=True,
               input_names=None, output_names=None, dynamic_axes=None, dynamo=True):
        calls.append(dict(module=module, args=args, opset=opset_version, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, dynamo=dynamo,
                          training=module.training))
        shutil.copyfile(ONNX, f)

    torch = types.ModuleType("torch")
    torch.Tensor = _Tensor
    torch.no_grad = _NoGrad
    torch.onnx = types.SimpleNamespace(export=export)
    monkeypatch.setitem(sys.modules, "torch", torch)
    return calls


def test_export_onnx(fake_torch, tmp_path):
    from embedeval.torch import export_onnx

    module = _Module(outputs=2)
    example = _Tensor()
    path = export_onnx(module, example, tmp_path / "m.onnx")
    assert path.read_bytes() == ONNX.read_bytes()
    (call,) = fake_torch
    assert call["opset"] == 17 and call["args"] == (example,) and call["dynamo"] is False
    assert call["input_names"] == ["images"] and call["output_names"] == ["embedding", "features"]
    assert call["dynamic_axes"] == {"images": {0: "batch"}, "embedding": {0: "batch"}, "features": {0: "batch"}}
    assert call["training"] is False and module.training is True  # eval for the export, then back
    with pytest.raises(ValueError):
        export_onnx(_Module(outputs=3), example, tmp_path / "x.onnx")
    export_onnx(_Module(outputs=3), example, tmp_path / "y.onnx", output_names=["a", "b", "c"])


def test_evaluate_module_registers_and_evaluates(fake_torch, client):
    from embedeval.torch import evaluate_module

    module = _Module(outputs=2)
    try:
        for _ in range(2):  # a training loop: the second call replaces the first checkpoint
            report = evaluate_module(client, module, _Tensor(), name="py-torch-model", loss="infonce",
                                     temperature=0.5, dataset="digits", card=CARD,
                                     spec={"skip_linear": True, "knn_k": 20})
            assert isinstance(report, embedeval.EvaluationReport) and report.ok
            assert report.model == "py-torch-model" and report.temperature == 0.5 and report.knn.k == 20
        assert client.get_model("py-torch-model").input.scale == 0.0625
        assert len(fake_torch) == 2 and module.training is True
    finally:
        client.delete_model("py-torch-model")


def test_evaluate_module_records_the_checkpoints_of_a_run(fake_torch, client):
    from embedeval.torch import evaluate_module

    module = _Module(outputs=2)
    names = [f"py-run-{step}" for step in (10, 20)]
    try:
        for step, name in zip((10, 20), names):
            report = evaluate_module(client, module, _Tensor(), name=name, loss="infonce",
                                     temperature=0.5, dataset="digits", card=CARD,
                                     spec={"skip_linear": True}, run="py-run", step=step)
            assert report.ok
            assert client.get_model(name).training.run == "py-run"
        run = client.get_run("py-run", "digits")
        assert [(c.step, c.model) for c in run] == [(10, names[0]), (20, names[1])]
        assert all(c.report is not None and c.report.ok for c in run)
    finally:
        for name in names:
            client.delete_model(name)


def test_evaluate_module_async_returns_before_the_evaluation_and_gives_its_report(fake_torch, client, tmp_path):
    from embedeval.torch import evaluate_module_async

    module = _Module(outputs=2)
    names = [f"py-async-{step}" for step in (1, 2)]
    try:
        pending = [
            evaluate_module_async(client, module, _Tensor(), name=name, loss="infonce", temperature=0.5,
                                  dataset="digits", card=CARD, spec={"skip_linear": True}, run="py-async",
                                  step=step)
            for step, name in zip((1, 2), names)
        ]
        assert len(fake_torch) == 2 and module.training is True  # exported in the call
        reports = [p.result(timeout=120) for p in pending]
        assert all(r.ok for r in reports) and [r.model for r in reports] == names
        assert all(p.done() and p.id == r.id and p.state == "completed" for p, r in zip(pending, reports))
        run = client.get_run("py-async", "digits")
        assert [(c.step, c.report.id if c.report else None) for c in run] == [(1, reports[0].id), (2, reports[1].id)]
        # The temporary export is gone once evaluated.
        assert not pending[0].upload.onnx.exists() and not pending[0].upload.onnx.parent.exists()
        # A card that cannot be built raises in the call, before the export.
        with pytest.raises(ValueError, match="step"):
            evaluate_module_async(client, module, _Tensor(), name="py-async-x", loss="infonce", temperature=0.5,
                                  dataset="digits", card=CARD, step=-1)
        assert len(fake_torch) == 2
        # An unknown dataset ends the checkpoint with NotFound, kept for another try.
        bad = evaluate_module_async(client, module, _Tensor(), name="py-async-bad", loss="infonce",
                                    temperature=0.5, dataset="no-such-dataset", card=CARD,
                                    export_dir=tmp_path)
        with pytest.raises(embedeval.NotFound):
            bad.result(timeout=60)
        assert bad.state == "failed" and (tmp_path / "py-async-bad.onnx").exists()
    finally:
        for name in [*names, "py-async-bad"]:
            try:
                client.delete_model(name)
            except embedeval.NotFound:
                pass
