"""The committed stubs are exactly what generate.sh makes from proto/, and the
typed results mirror every field of their messages."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from embedeval import types
from embedeval._proto import dataset_pb2, evaluation_pb2, model_pb2

CLIENT = Path(__file__).resolve().parents[1]
COMMITTED = CLIENT / "src" / "embedeval" / "_proto"


def _generator():
    spec = importlib.util.spec_from_file_location("embedeval_generate", CLIENT / "tools" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the test extra) regenerates the stubs")
    gen = _generator()
    written = gen.generate(tmp_path)
    fresh = {p.name: p.read_bytes() for p in written}
    committed = {p.name: p.read_bytes() for p in COMMITTED.iterdir() if gen.is_generated(p)}
    assert fresh, "nothing was generated"
    assert sorted(committed) == sorted(fresh), "stub files differ: run clients/python/generate.sh"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} differ from proto/: run clients/python/generate.sh"


def test_stubs_import_package_relative() -> None:
    for path in COMMITTED.glob("*.py"):
        text = path.read_text()
        assert "from embedeval.v1" not in text and "import embedeval.v1" not in text, path.name


@pytest.mark.parametrize(
    "message",
    [
        model_pb2.TrainingInfo, model_pb2.InputInfo, model_pb2.OutputInfo, model_pb2.ModelInfo,
        model_pb2.SkippedModel, dataset_pb2.SplitInfo, dataset_pb2.DatasetInfo, evaluation_pb2.MetricSpec,
        evaluation_pb2.Augmentation, evaluation_pb2.KnnResult, evaluation_pb2.LinearResult, evaluation_pb2.Histogram,
        evaluation_pb2.PerClass,
        evaluation_pb2.EvaluationReport, evaluation_pb2.Accepted, evaluation_pb2.ExcludedModel,
        evaluation_pb2.Comparison, evaluation_pb2.Recommendation, evaluation_pb2.AccuracyInterval,
        evaluation_pb2.ClassTolerance,
        evaluation_pb2.TagGroup, evaluation_pb2.MetricSummary,
        evaluation_pb2.Figure,
        evaluation_pb2.RunSummary, evaluation_pb2.Checkpoint, evaluation_pb2.RunWarning, evaluation_pb2.Run,
        __import__("embedeval._proto.tensor_pb2", fromlist=["Progress"]).Progress,
    ],
)
def test_dataclasses_mirror_every_field(message) -> None:
    cls = types.MESSAGE_CLASSES[message.DESCRIPTOR.full_name]
    fields = [f.name for f in dataclasses.fields(cls)]
    assert fields == [f.name for f in message.DESCRIPTOR.fields]


def test_every_report_field_converts() -> None:
    msg = evaluation_pb2.EvaluationReport(
        id="e1", model="m", status=evaluation_pb2.COMPLETED, uniformity=3.5, uniformity_loss=-3.5,
        nearest_negative_similarity=[0.9, 0.8], timings={"total": 1.5},
        knn=evaluation_pb2.KnnResult(top1=0.9, k=200), spec=evaluation_pb2.MetricSpec(knn_k=200, skip_linear=True),
        preprocessing=model_pb2.InputInfo(name="images", dtype=1, shape=[-1, 1, 8, 8]),
        histograms=[evaluation_pb2.Histogram(name="positive", lo=-1, hi=1, counts=[1, 2])],
        tags={"seed": "1", "loss": "infonce"},
    )
    msg.created_at.FromSeconds(1_700_000_000)
    r = types.EvaluationReport.from_proto(msg)
    assert r.status is types.EvaluationStatus.COMPLETED and r.status == "COMPLETED" and r.ok
    assert r.uniformity == 3.5 and r.alignment is None and r.tolerance is None
    assert r.linear is None and r.knn.top1 == 0.9 and r.knn.k == 200
    assert r.spec.knn_k == 200 and r.spec.linear_c is None and r.spec.skip_linear is True
    assert r.preprocessing.dtype is types.DataType.FLOAT32 and r.preprocessing.shape == [-1, 1, 8, 8]
    assert r.created_at.year == 2023 and r.created_at.tzinfo is not None
    assert r.timings == {"total": 1.5} and r.histograms[0].counts == [1, 2]
    assert r.tags == {"seed": "1", "loss": "infonce"} and isinstance(r.tags, dict)
    d = r.to_dict()
    assert d["status"] == "COMPLETED" and d["created_at"] == "2023-11-14T22:13:20Z"
    assert d["knn"]["top1"] == 0.9 and d["linear"] is None and d["preprocessing"]["dtype"] == "FLOAT32"
    assert d["tags"] == {"seed": "1", "loss": "infonce"}
    import json
    json.dumps(d)
