"""embedeval.trackers without a server: reports built from their protobuf
messages (one from a real comparison, docs/cifar10_comparison.json, with
the tags of its model's card) are logged at steps 0, 1, 2 with a figure to
W&B (offline), TensorBoard and MLflow (a file store), and read back with
each tool's own reader."""
from __future__ import annotations

import io
import json
import math
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format

import embedeval
from conftest import REPO
from embedeval import trackers
from embedeval._proto import evaluation_pb2, model_pb2, tensor_pb2
from embedeval.trackers import LogEntry, log_report, report_config, report_entry, report_scalars

STEPS = (0, 1, 2)
COMPARISON_JSON = REPO / "docs" / "cifar10_comparison.json"
#: The tags of the comparison's first model (its card's [training] keys but
#: the measured ones, as the server writes them); each evaluation adds a
#: checkpoint's step. The architecture and the recipe are longer than a W&B
#: run tag may be.
ARCHITECTURE = ("cifar resnet: conv3x3 16 (no max-pool), basicblock x1 per stage, widths 16-32-64, strides 1-2-2, "
                "gap (features 64) + mlp 64-128-128 (embedding 128)")
RECIPE = ("15 epochs over a class-balanced 10000-image subset of the train split (seed 0), batch 256, two views: "
          "random resized crop 32 (area 0.2-1), flip, colour jitter 0.4 b/c/s p 0.8, grayscale p 0.2")
TAGS = {"architecture": ARCHITECTURE, "batch_size": "256", "data": "image folder (classes sorted)",
        "dataset": "cifar10", "epochs": "15", "hard_negatives": "42", "loss": "hard_infonce",
        "negatives": "in-batch", "optimizer": "adam lr=0.001", "recipe": RECIPE, "seed": "0",
        "temperature": "0.07", "train_images": "10000"}
LONG_TAGS = ("architecture", "recipe")


def _png(width: int = 6, height: int = 4, seed: int = 0) -> bytes:
    """A small RGB PNG file."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _report(step: int) -> embedeval.EvaluationReport:
    """A real report (the first row of the CIFAR-10 comparison in docs/),
    every measurement moved by an amount that depends on `step`."""
    row = json.loads(COMPARISON_JSON.read_text())["rows"][0]
    msg = json_format.ParseDict(row, evaluation_pb2.EvaluationReport(), ignore_unknown_fields=True)
    d = 0.01 * step
    msg.id = f"eval-{step}"
    msg.model_sha256 = f"{step:064x}"
    for name in ("uniformity", "alignment", "tolerance", "positive_similarity", "penalty_entropy",
                 "effective_rank", "effective_negatives"):
        setattr(msg, name, getattr(msg, name) + d)
    msg.uniformity_loss = -msg.uniformity
    msg.uniformity_stderr = 0.001 * (step + 1)
    msg.nearest_negative_similarity[:] = [v - d for v in msg.nearest_negative_similarity]
    msg.relative_penalty[:] = [v + d / 10 for v in msg.relative_penalty]
    msg.knn.top1 += d
    msg.knn.top5 += d / 2
    msg.linear.top1 += d
    msg.linear.top5 += d / 2
    msg.linear.train_top1 += d
    msg.linear.iterations += step
    msg.linear.converged = step != 1
    if "train_rows" in msg.linear.DESCRIPTOR.fields_by_name:  # servers from the probe's subsets on
        msg.linear.train_rows = 50000
        msg.linear.seconds_per_iteration = 0.01 * (step + 1)
    if "linear_train_fraction" in msg.spec.DESCRIPTOR.fields_by_name:  # echoed filled in, as the server does
        msg.spec.linear_train_fraction = 1.0
        msg.spec.linear_train_seed = 0
    for stage in list(msg.timings):
        msg.timings[stage] += step
    msg.per_class.tolerance[:] = [v + d for v in msg.per_class.tolerance]
    msg.per_class.knn_top1[:] = [v + d for v in msg.per_class.knn_top1]
    msg.per_class.linear_top1[:] = [v - d for v in msg.per_class.linear_top1]
    for h in msg.histograms:
        h.counts[:] = [c + step for c in h.counts]
    if "retrieval" in msg.DESCRIPTOR.fields_by_name:  # servers from the retrieval metrics on
        if not msg.HasField("retrieval"):  # a comparison stored before them
            msg.spec.recall_ks[:] = [1, 4]
            msg.spec.retrieval_gallery = "train"
            msg.spec.kmeans_iterations, msg.spec.kmeans_restarts, msg.spec.kmeans_seed = 20, 1, 1234
            msg.retrieval.gallery, msg.retrieval.queries = "train", msg.num_test
            msg.retrieval.recall_at_k.add(k=1, recall=0.5)
            msg.retrieval.recall_at_k.add(k=4, recall=0.75)
            msg.clustering.clusters, msg.clustering.iterations, msg.clustering.restarts = 10, 20, 1
            msg.clustering.seed, msg.clustering.objective = 1234, 5000.0
            msg.per_class.map_at_r[:] = [0.2] * len(msg.per_class.labels)
            msg.per_class.r_precision[:] = [0.3] * len(msg.per_class.labels)
        msg.retrieval.precision_at_1 = 0.5 + d
        msg.retrieval.r_precision = 0.3 + d
        msg.retrieval.map_at_r = 0.2 + d
        msg.clustering.nmi, msg.clustering.ami = 0.4 + d, 0.35 + d
    if "tags" in msg.DESCRIPTOR.fields_by_name:
        msg.tags.update({**TAGS, "step": str(step)})
    return embedeval.EvaluationReport.from_proto(msg)


def _hand_report() -> embedeval.EvaluationReport:
    msg = evaluation_pb2.EvaluationReport(
        id="e1", model="my-simclr", model_sha256="ab" * 32, dataset="digits", dataset_id="cd" * 32,
        temperature=0.2, loss="other", loss_name="my loss", num_test=360, num_train=1437, embedding_dim=32,
        uniformity=3.5, uniformity_loss=-3.5, alignment=0.25, tolerance=0.3, positive_similarity=0.8,
        nearest_negative_similarity=[0.9, 0.85, 0.8], relative_penalty=[0.5, 0.3, 0.2], penalty_entropy=1.0,
        effective_rank=20.5,
        knn=evaluation_pb2.KnnResult(top1=0.95, top5=0.99, k=200, temperature=0.1, metric="cosine"),
        linear=evaluation_pb2.LinearResult(top1=0.96, top5=1.0, train_top1=0.99, c=1.0, iterations=87,
                                           feature_output="features", converged=True),
        spec=evaluation_pb2.MetricSpec(uniformity_t=2.0, knn_k=200, skip_linear=False,
                                       augmentation=evaluation_pb2.Augmentation(recipe="simclr", jitter=0.4)),
        timings={"embed_test": 0.5, "knn": 0.25, "weird stage!": 1.0},
        status=evaluation_pb2.COMPLETED, uniformity_estimator="sampled", uniformity_stderr=0.01,
        effective_negatives=2.718,
        histograms=[evaluation_pb2.Histogram(name="positive", lo=-1, hi=1, counts=[0, 1, 3, 6])],
        preprocessing=model_pb2.InputInfo(name="images", dtype=tensor_pb2.FLOAT32, shape=[-1, 1, 8, 8],
                                          layout="NCHW", scale=0.0625, mean=[0.0], std=[1.0], resize="none"),
        execution_provider="cpu", test_split="test", train_split="train", warnings=["w1", "w2"],
        per_class=evaluation_pb2.PerClass(labels=[0, 1, 2], counts=[1, 5, 5], tolerance=[math.nan, 0.5, 0.25],
                                          knn_top1=[1.0, 0.8, 0.6], similarity=[0.0] * 9,
                                          names=["zero", "one one", "two/2"]),
    )
    msg.created_at.FromSeconds(1_700_000_000)
    return embedeval.EvaluationReport.from_proto(msg)


# ---------------------------------------------------------------------------
# Flattening
# ---------------------------------------------------------------------------


def test_report_scalars_names_and_values():
    assert report_scalars(_hand_report()) == {
        "uniformity": 3.5,
        "uniformity_loss": -3.5,
        "uniformity_stderr": 0.01,
        "alignment": 0.25,
        "tolerance": 0.3,
        "positive_similarity": 0.8,
        "penalty_entropy": 1.0,
        "effective_negatives": 2.718,
        "effective_rank": 20.5,
        "nearest_negative_similarity/rank_1": 0.9,
        "nearest_negative_similarity/rank_2": 0.85,
        "nearest_negative_similarity/rank_3": 0.8,
        "relative_penalty/rank_1": 0.5,
        "relative_penalty/rank_2": 0.3,
        "relative_penalty/rank_3": 0.2,
        "knn/top1": 0.95,
        "knn/top5": 0.99,
        "linear/top1": 0.96,
        "linear/top5": 1.0,
        "linear/train_top1": 0.99,
        "linear/iterations": 87.0,
        "linear/converged": 1.0,
        "timings/embed_test": 0.5,
        "timings/knn": 0.25,
        "timings/weird_stage_": 1.0,
        # NaN (a class of one row) left out; no linear_top1 per class (empty)
        "per_class/tolerance/one_one": 0.5,
        "per_class/tolerance/two_2": 0.25,
        "per_class/knn_top1/zero": 1.0,
        "per_class/knn_top1/one_one": 0.8,
        "per_class/knn_top1/two_2": 0.6,
    }
    assert not any(k.startswith("per_class/") for k in report_scalars(_hand_report(), per_class=False))


def test_absent_measurements_are_left_out():
    bare = embedeval.EvaluationReport.from_proto(evaluation_pb2.EvaluationReport(id="e", model="m"))
    assert report_scalars(bare) == {}
    assert report_config(bare) == {"evaluation_id": "e", "model": "m", "temperature": 0.0, "num_test": 0,
                                   "num_train": 0, "embedding_dim": 0, "status": "EVALUATION_STATUS_UNSPECIFIED"}


def test_report_config():
    config = report_config(_hand_report())
    expected = {
        "evaluation_id": "e1", "model": "my-simclr", "model_sha256": "ab" * 32, "dataset": "digits",
        "dataset_id": "cd" * 32, "loss": "other", "loss_name": "my loss", "temperature": 0.2,
        "num_test": 360, "num_train": 1437, "embedding_dim": 32, "status": "COMPLETED",
        "created_at": "2023-11-14T22:13:20Z", "test_split": "test", "train_split": "train",
        "execution_provider": "cpu", "uniformity_estimator": "sampled", "warnings": "w1; w2",
        "knn/k": 200, "knn/temperature": 0.1, "knn/metric": "cosine",
        "linear/c": 1.0, "linear/feature_output": "features",
        "preprocessing/name": "images", "preprocessing/dtype": "FLOAT32",
        "preprocessing/shape/0": -1, "preprocessing/shape/1": 1, "preprocessing/shape/2": 8,
        "preprocessing/shape/3": 8, "preprocessing/layout": "NCHW", "preprocessing/scale": 0.0625,
        "preprocessing/mean/0": 0.0, "preprocessing/std/0": 1.0, "preprocessing/resize": "none",
        "preprocessing/image_height": 0, "preprocessing/image_width": 0,
        "preprocessing/resize_factor_height": 0.0, "preprocessing/resize_factor_width": 0.0,
        "spec/uniformity_t": 2.0, "spec/knn_k": 200, "spec/augmentation/recipe": "simclr",
        "spec/augmentation/jitter": 0.4,
        **{f"spec/skip_{m}": False for m in ("uniformity", "alignment", "tolerance", "nearest_negatives",
                                             "penalty", "effective_rank", "knn", "linear", "per_class",
                                             "retrieval", "clustering")},
    }
    assert config == expected
    assert all(isinstance(v, (str, int, float, bool)) for v in config.values())


#: Where each numeric field of the report's messages goes: a scalar name
#: (``rank_*``: an indexed list), a config key, or why it is not logged.
LOGGED_AS = {
    "EvaluationReport.temperature": "config:temperature",
    "EvaluationReport.num_test": "config:num_test",
    "EvaluationReport.num_train": "config:num_train",
    "EvaluationReport.embedding_dim": "config:embedding_dim",
    "EvaluationReport.uniformity": "uniformity",
    "EvaluationReport.uniformity_loss": "uniformity_loss",
    "EvaluationReport.alignment": "alignment",
    "EvaluationReport.tolerance": "tolerance",
    "EvaluationReport.positive_similarity": "positive_similarity",
    "EvaluationReport.nearest_negative_similarity": "nearest_negative_similarity/rank_1",
    "EvaluationReport.relative_penalty": "relative_penalty/rank_1",
    "EvaluationReport.penalty_entropy": "penalty_entropy",
    "EvaluationReport.effective_rank": "effective_rank",
    "EvaluationReport.uniformity_stderr": "uniformity_stderr",
    "EvaluationReport.effective_negatives": "effective_negatives",
    "EvaluationReport.timings": "timings/knn",
    "KnnResult.top1": "knn/top1",
    "KnnResult.top5": "knn/top5",
    "KnnResult.k": "config:knn/k",
    "KnnResult.temperature": "config:knn/temperature",
    "LinearResult.top1": "linear/top1",
    "LinearResult.top5": "linear/top5",
    "LinearResult.train_top1": "linear/train_top1",
    "LinearResult.c": "config:linear/c",
    "LinearResult.iterations": "linear/iterations",
    "LinearResult.converged": "linear/converged",
    "LinearResult.train_rows": "config:linear/train_rows",
    "LinearResult.seconds_per_iteration": "linear/seconds_per_iteration",
    "PerClass.tolerance": "per_class/tolerance/airplane",
    "PerClass.knn_top1": "per_class/knn_top1/airplane",
    "PerClass.linear_top1": "per_class/linear_top1/airplane",
    "PerClass.map_at_r": "per_class/map_at_r/airplane",
    "PerClass.r_precision": "per_class/r_precision/airplane",
    "RetrievalResult.precision_at_1": "retrieval/precision_at_1",
    "RetrievalResult.r_precision": "retrieval/r_precision",
    "RetrievalResult.map_at_r": "retrieval/map_at_r",
    "RetrievalResult.queries": "config:retrieval/queries",
    "RetrievalResult.lone_queries": "config:retrieval/lone_queries",
    "RecallAtK.k": "retrieval/recall_at_1",
    "RecallAtK.recall": "retrieval/recall_at_1",
    "ClusteringResult.nmi": "clustering/nmi",
    "ClusteringResult.ami": "clustering/ami",
    "ClusteringResult.objective": "clustering/objective",
    "ClusteringResult.clusters": "config:clustering/clusters",
    "ClusteringResult.iterations": "config:clustering/iterations",
    "ClusteringResult.restarts": "config:clustering/restarts",
    "ClusteringResult.seed": "config:clustering/seed",
    "PerClass.labels": "the class names' key",
    "PerClass.counts": "not logged: the dataset's class sizes",
    "PerClass.similarity": "not logged: a C x C matrix (the 'classes' figure)",
    "PerClass.nearest_negative_classes": "not logged: a C x C matrix (the 'confusion' figure)",
    "PerClass.nearest_negative_k": "not logged: a setting of the matrix",
    "Histogram.lo": "histograms/positive",
    "Histogram.hi": "histograms/positive",
    "Histogram.counts": "histograms/positive",
}


def _numeric_fields(descriptor) -> set:
    from google.protobuf.descriptor import FieldDescriptor as F

    numeric = {F.TYPE_DOUBLE, F.TYPE_FLOAT, F.TYPE_INT32, F.TYPE_INT64, F.TYPE_UINT32, F.TYPE_UINT64,
               F.TYPE_SINT32, F.TYPE_SINT64, F.TYPE_FIXED32, F.TYPE_FIXED64, F.TYPE_BOOL}
    out = set()
    for fd in descriptor.fields:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].type in numeric:
                out.add(f"{descriptor.name}.{fd.name}")
        elif fd.type in numeric:
            out.add(f"{descriptor.name}.{fd.name}")
    return out


def test_every_numeric_field_of_a_report_is_logged():
    """A numeric field added to the report's messages fails here until it is
    logged (or said not to be)."""
    fields = set()
    for d in (evaluation_pb2.EvaluationReport.DESCRIPTOR, evaluation_pb2.KnnResult.DESCRIPTOR,
              evaluation_pb2.LinearResult.DESCRIPTOR, evaluation_pb2.PerClass.DESCRIPTOR,
              evaluation_pb2.Histogram.DESCRIPTOR, evaluation_pb2.RetrievalResult.DESCRIPTOR,
              evaluation_pb2.RecallAtK.DESCRIPTOR, evaluation_pb2.ClusteringResult.DESCRIPTOR):
        fields |= _numeric_fields(d)
    assert fields - set(LOGGED_AS) == set()
    entry = report_entry(_report(0))
    for field, where in LOGGED_AS.items():
        if field not in fields:  # a field of a newer contract than the stubs'
            continue
        if where.startswith("config:"):
            assert where[len("config:"):] in entry.config, field
        elif where.startswith("histograms/"):
            assert where in entry.histograms, field
        elif "/" in where or where in entry.scalars:
            assert where in entry.scalars, field
    # and every spec field is a setting
    for name in evaluation_pb2.MetricSpec.DESCRIPTOR.fields_by_name:
        if name not in ("augmentation", "positives_split"):
            assert f"spec/{name}" in entry.config or f"spec/{name}/0" in entry.config, name


def test_prefix_figures_and_comparisons():
    png = _png()
    entry = report_entry(_hand_report(), step=3, figures={"negatives": png}, prefix="val")
    assert entry.step == 3 and entry.prefix == "val/"
    assert entry.scalars["val/knn/top1"] == 0.95 and "knn/top1" not in entry.scalars
    assert entry.config["val/model"] == "my-simclr"
    assert entry.figures == {"val/figures/negatives": png}
    assert list(entry.histograms) == ["val/histograms/positive"]
    assert entry.is_per_evaluation("val/evaluation_id") and not entry.is_per_evaluation("val/model")
    svg = embedeval.Figure(data=b"<svg/>", media_type="image/svg+xml")
    with pytest.raises(ValueError, match="format='png'"):
        report_entry(_hand_report(), figures={"ut": svg})
    with pytest.raises(ValueError, match="PNG"):
        report_entry(_hand_report(), figures={"ut": b"GIF89a"})
    as_figure = embedeval.Figure(data=png, media_type="image/png", width=6, height=4)
    assert report_entry(_hand_report(), figures={"ut": as_figure}).figures == {"figures/ut": png}

    doc = json.loads(COMPARISON_JSON.read_text())
    comparison = embedeval.Comparison.from_proto(
        json_format.ParseDict(doc, evaluation_pb2.Comparison(), ignore_unknown_fields=True))
    entry = report_entry(comparison)
    for row in comparison.rows:
        for name, value in report_scalars(row).items():
            assert entry.scalars[f"{row.model}/{name}"] == value
        assert entry.config[f"{row.model}/temperature"] == row.temperature
    rec = comparison.recommend("infonce")
    assert entry.config["recommended/infonce"] == rec.recommended
    assert entry.scalars["recommended_temperature/infonce"] == rec.recommended_temperature
    assert entry.config["comparison_id"] == comparison.id


def test_tags_are_settings_and_the_entry_tags():
    report = _hand_report()
    report.tags = {"seed": "1", "epochs": "300", "step": "20", "odd key": "x", "empty": ""}
    config = report_config(report)
    # Under tags/, values as the text they are; the empty one left out, a
    # key that no server gives cleaned as the metric names are.
    assert {k: v for k, v in config.items() if k.startswith("tags/")} == {
        "tags/epochs": "300", "tags/odd_key": "x", "tags/seed": "1", "tags/step": "20"}
    assert {k: v for k, v in config.items() if not k.startswith("tags/")} == report_config(_hand_report())
    entry = report_entry(report, prefix="val")
    assert entry.config["val/tags/seed"] == "1" and entry.tags == report.tags
    # A checkpoint's step changes with every evaluation; the other tags are settings.
    assert entry.is_per_evaluation("val/tags/step") and not entry.is_per_evaluation("val/tags/seed")
    assert report_entry(_hand_report()).tags == {}

    # A comparison: each row's under its model; the entry's tags, those every row has with one value.
    rows = [embedeval.EvaluationReport(id=f"e{i}", model=f"m{i}", tags={"seed": str(i), "loss": "infonce"})
            for i in range(2)]
    entry = report_entry(embedeval.Comparison(id="c", rows=rows))
    assert entry.config["m0/tags/seed"] == "0" and entry.config["m1/tags/seed"] == "1"
    assert entry.tags == {"loss": "infonce"}
    assert report_entry(embedeval.Comparison(id="c")).tags == {}


def test_wandb_run_tags_added_replaced_and_kept():
    pytest.importorskip("wandb")

    class Config(dict):
        def update(self, values, allow_val_change=False):
            super().update(values)

    class Run:  # the parts of a wandb Run the tracker uses
        def __init__(self):
            self.config, self.tags, self.logged = Config(), ("mine",), []

        def define_metric(self, name, step_metric=None):
            pass

        def log(self, data, step=None):
            self.logged.append(data)

    run = Run()
    t = trackers.WandbTracker(run)
    report = _hand_report()
    report.tags = {"seed": "1", "step": "10", "architecture": ARCHITECTURE}
    log_report(report, t)
    # Its own tags kept; the step (per evaluation) and a tag longer than W&B takes left out.
    assert run.tags == ("mine", "seed=1") and run.config["tags/architecture"] == ARCHITECTURE
    report.tags = {"seed": "2", "step": "20", "sweep": "tau"}
    log_report(report, t)
    assert run.tags == ("mine", "seed=2", "sweep=tau")  # the value that changed replaces the tracker's own
    run.tags = ("mine", "seed=2", "sweep=tau", "later")
    log_report(report, t)
    assert run.tags == ("mine", "seed=2", "sweep=tau", "later")
    assert len(run.logged) == 3


# ---------------------------------------------------------------------------
# The trackers, read back with their own readers
# ---------------------------------------------------------------------------


def _log_three_steps(to, **kwargs):
    entries = []
    for step in STEPS:
        entries.append(log_report(_report(step), to, step=step, figures={"negatives": _png(seed=step)}, **kwargs))
    return entries


def _wandb_records(path: Path):
    """The records of a .wandb file: wandb's DataStore where the installed
    wandb has it, else its LevelDB-log framing read here; each record
    decoded with wandb's own protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    try:
        from wandb.sdk.internal.datastore import DataStore  # wandb < 0.19
    except ImportError:
        DataStore = None
    blobs = []
    if DataStore is not None:
        ds = DataStore()
        ds.open_for_scan(str(path))
        while True:
            data = ds.scan_data()
            if data is None:
                break
            blobs.append(data)
    else:
        data = path.read_bytes()
        assert data[:4] == b":W&B", "not a W&B transaction log"
        block, pos, pending = 32768, 7, b""
        while pos + 7 <= len(data):
            left = block - pos % block
            if left < 7:  # the block's zero padding
                pos += left
                continue
            crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
            if kind == 0 and length == 0:
                pos += left
                continue
            payload = data[pos + 7:pos + 7 + length]
            assert zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF == crc
            pos += 7 + length
            if kind == 1:  # FULL
                blobs.append(payload)
            elif kind == 2:  # FIRST
                pending = payload
            elif kind == 3:  # MIDDLE
                pending += payload
            elif kind == 4:  # LAST
                blobs.append(pending + payload)
    records = []
    for blob in blobs:
        rec = pb.Record()
        rec.ParseFromString(blob)
        records.append(rec)
    return records


def _item_key(item) -> str:
    return item.key or "/".join(item.nested_key)


@pytest.fixture()
def wandb_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    for var, value in {
        "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
        "WANDB_CONFIG_DIR": str(tmp_path / "config"), "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_DATA_DIR": str(tmp_path / "data"), "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true",
        "WANDB_CONSOLE": "off",
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    try:
        settings = wandb.Settings(x_disable_stats=True)
    except Exception:  # an older wandb
        settings = None
    yield wandb, settings, tmp_path
    if getattr(wandb, "run", None) is not None:
        wandb.run.finish()
    if hasattr(wandb, "teardown"):
        wandb.teardown()


def test_wandb(wandb_offline):
    wandb, settings, tmp_path = wandb_offline
    run = wandb.init(project="embedeval-test", dir=str(tmp_path), settings=settings, tags=["baseline"])
    run.log({"train/loss": 1.0})  # the training loop's own points, at other steps
    run.log({"train/loss": 0.5})
    run.log({"train/loss": 0.25})
    run.log({"train/loss": 0.125})
    entries = _log_three_steps("wandb")
    run.finish()
    if hasattr(wandb, "teardown"):  # the service has written the whole transaction log once it has stopped
        wandb.teardown()
    (path,) = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    records = _wandb_records(path)

    rows = {}
    config = {}
    run_tags = None
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            row = {_item_key(i): json.loads(i.value_json) for i in rec.history.item}
            if trackers.WANDB_STEP_METRIC in row:
                rows[row[trackers.WANDB_STEP_METRIC]] = row
        elif kind == "run":
            config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
            run_tags = list(rec.run.tags)  # the last run record's
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
    assert sorted(rows) == list(STEPS)
    for step, entry in zip(STEPS, entries):
        row = rows[step]
        assert len(entry.scalars) >= 80  # 9 + 2 x 10 ranks + 2 kNN + 5 probe + 14 timings + 3 x 10 classes
        for name, value in entry.scalars.items():
            assert row[name] == pytest.approx(value, rel=1e-12, abs=1e-12), (step, name)
        for name, h in entry.histograms.items():
            assert row[f"{name}/_type"] == "histogram"
            assert row[f"{name}/values"] == list(h.counts)
            assert row[f"{name}/bins"] == pytest.approx(np.linspace(h.lo, h.hi, len(h.counts) + 1))
        assert row["figures/negatives/_type"] == "image-file"
        assert (row["figures/negatives/width"], row["figures/negatives/height"]) == (6, 4)
        from PIL import Image

        saved = Image.open(path.parent / "files" / row["figures/negatives/path"])
        expected = Image.open(io.BytesIO(_png(seed=step)))
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(expected.convert("RGB")))
    # the config: the last evaluation's
    last = entries[-1].config
    for key, value in last.items():
        assert config[key] == value, key
    assert config["evaluation_id"] == "eval-2" and config["spec/knn_k"] == 200
    # the tags: settings, and the run's tags (the run's own kept; the step,
    # per evaluation, and the architecture and recipe, longer than W&B takes, left out)
    assert {k: config[f"tags/{k}"] for k in TAGS} == TAGS and config["tags/step"] == "2"
    assert run_tags == ["baseline", *(f"{k}={v}" for k, v in sorted(TAGS.items()) if k not in LONG_TAGS)]
    # the step metric is declared as the x-axis of every name
    metrics = {rec.metric.name: rec.metric.step_metric for rec in records if rec.WhichOneof("record_type") == "metric"}
    assert metrics["knn/top1"] == trackers.WANDB_STEP_METRIC
    assert metrics["figures/negatives"] == trackers.WANDB_STEP_METRIC


def test_wandb_without_a_run():
    pytest.importorskip("wandb")
    import wandb

    if wandb.run is not None:
        pytest.skip("a W&B run is active")
    with pytest.raises(ValueError, match="wandb.init"):
        log_report(_hand_report(), "wandb")


def _accumulator(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    logdir = tmp_path / "runs" / "simclr"
    entries = _log_three_steps(f"tensorboard:{logdir}")
    acc = _accumulator(logdir)
    tags = acc.Tags()
    names = set(entries[0].scalars)
    assert set(tags["scalars"]) == names
    for name in names:
        events = acc.Scalars(name)
        assert [e.step for e in events] == list(STEPS), name
        for e, entry in zip(events, entries):
            assert e.value == float(np.float32(entry.scalars[name])), (name, e.step)
    images = acc.Images("figures/negatives")
    assert [i.step for i in images] == list(STEPS)
    assert [i.encoded_image_string for i in images] == [_png(seed=s) for s in STEPS]
    assert (images[0].width, images[0].height) == (6, 4)
    for name, h in entries[0].histograms.items():
        events = acc.Histograms(name)
        assert [e.step for e in events] == list(STEPS)
        for e, entry in zip(events, entries):
            value = e.histogram_value
            counts = list(entry.histograms[name].counts)
            assert list(value.bucket) == counts and value.num == sum(counts)
            assert list(value.bucket_limit) == pytest.approx(np.linspace(h.lo, h.hi, len(counts) + 1)[1:])
    texts = acc.Tensors("config")
    assert [t.step for t in texts] == list(STEPS)
    table = texts[2].tensor_proto.string_val[0].decode()
    assert "| evaluation_id | eval-2 |" in table and "| spec/knn_k | 200 |" in table
    assert "| tags/seed | 0 |" in table and "| tags/step | 2 |" in table
    assert f"| tags/architecture | {ARCHITECTURE} |" in table
    (content,) = acc.PluginTagToContent("hparams").values()
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["model"].string_value == "cifar10-hard-infonce-t0.07"
    assert hparams["temperature"].number_value == pytest.approx(0.07)
    assert hparams["spec/skip_linear"].bool_value is False
    assert "evaluation_id" not in hparams
    # the tags as text (as they are in the report), but the per-evaluation step
    assert {k: hparams[f"tags/{k}"].string_value for k in TAGS} == TAGS
    assert "tags/step" not in hparams


def test_tensorboard_steps_go_on_without_a_step(tmp_path):
    pytest.importorskip("tensorboard")
    with trackers.TensorBoardTracker(tmp_path) as tb:
        for _ in range(3):
            log_report(_hand_report(), tb)
        log_report(_hand_report(), tb, step=10)
        log_report(_hand_report(), tb)
    assert [e.step for e in _accumulator(tmp_path).Scalars("knn/top1")] == [0, 1, 2, 10, 11]


def test_tensorboard_through_a_summary_writer(tmp_path):
    """A torch or tensorboardX SummaryWriter: the summaries go to its file writer."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    class FileWriter:  # as torch.utils.tensorboard.writer.FileWriter
        def __init__(self, logdir):
            self.events = EventFileWriter(logdir)

        def add_summary(self, summary, global_step=None, walltime=None):
            self.events.add_event(event_pb2.Event(summary=summary, step=global_step, wall_time=walltime))

    class SummaryWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir
            self.file_writer = FileWriter(log_dir)

        def _get_file_writer(self):
            return self.file_writer

        def flush(self):
            self.file_writer.events.flush()

    writer = SummaryWriter(str(tmp_path))
    assert trackers.tracker(writer) is trackers.tracker(writer)
    log_report(_hand_report(), writer, step=4, figures={"ut": _png()})
    acc = _accumulator(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("knn/top1")] == [(4, float(np.float32(0.95)))]
    assert acc.Images("figures/ut")[0].encoded_image_string == _png()


@pytest.fixture()
def mlflow_file_store(monkeypatch):
    pytest.importorskip("mlflow")
    # Recent MLflow refuses the file store unless asked (its default is a database).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves the machine


def test_mlflow(tmp_path, mlflow_file_store):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    target = f"mlflow:{store}"
    entries = _log_three_steps(target)
    mlflow_tracker = trackers.tracker(target)
    run_id = mlflow_tracker.run_id
    mlflow_tracker.close()

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "cifar10-hard-infonce-t0.07"
    assert client.get_experiment(run.info.experiment_id).name == "embedeval"
    for name in entries[0].scalars:
        history = sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)
        assert [m.step for m in history] == list(STEPS), name
        assert [m.value for m in history] == [e.scalars[name] for e in entries], name
    params, tags = run.data.params, run.data.tags
    for key, value in entries[0].config.items():
        if entries[0].is_per_evaluation(key):
            assert key not in params
            assert tags[key] == str(entries[-1].config[key]), key  # the last evaluation's
        else:
            assert params[key] == str(value), key
    assert tags["evaluation_id"] == "eval-2" and params["spec/augmentation/recipe"] == "simclr"
    # the report's tags are params, but the step of each evaluation, an MLflow tag (the last)
    assert {k: params[f"tags/{k}"] for k in TAGS} == TAGS
    assert "tags/step" not in params and tags["tags/step"] == "2"

    def files(path):
        out = []
        for info in client.list_artifacts(run_id, path):
            out.extend(files(info.path) if info.is_dir else [info.path])
        return out

    assert sorted(files("figures")) == [f"figures/negatives/step_{s:06d}.png" for s in STEPS]
    assert sorted(files("histograms")) == [f"histograms/step_{s:06d}.json" for s in STEPS]
    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "download")))
    for step, entry in zip(STEPS, entries):
        assert (local / f"figures/negatives/step_{step:06d}.png").read_bytes() == _png(seed=step)
        table = json.loads((local / f"histograms/step_{step:06d}.json").read_text())
        assert table == {name: {"lo": h.lo, "hi": h.hi, "counts": list(h.counts)}
                         for name, h in entry.histograms.items()}


def test_mlflow_active_run_params_that_change_and_long_values(tmp_path, mlflow_file_store, monkeypatch):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri((tmp_path / "mlruns").resolve().as_uri())
    try:
        _active_run(mlflow)
    finally:
        mlflow.set_tracking_uri(previous)


def _active_run(mlflow):
    report = _hand_report()
    report.test_split = "x" * 600  # longer than MLflow's param limit
    with mlflow.start_run() as run:
        log_report(report, "mlflow", step=0)
        report.test_split = "test"
        with pytest.warns(UserWarning, match="test_split"):
            log_report(report, "mlflow", step=1)
        assert trackers.tracker("mlflow") is trackers.tracker(run)
    data = mlflow.tracking.MlflowClient().get_run(run.info.run_id).data
    assert len(data.params["test_split"]) == trackers.MLFLOW_MAX_PARAM_LENGTH
    assert data.params["test_split"].endswith("...")
    assert data.tags["test_split"] == "test"  # the value that changed, as a tag
    assert data.metrics["knn/top1"] == 0.95
    with pytest.raises(ValueError, match="start_run"):
        log_report(report, "mlflow")


def test_one_call_to_several_trackers_and_a_tracker_of_your_own(tmp_path, mlflow_file_store):
    pytest.importorskip("tensorboard")

    class Mine:
        def __init__(self):
            self.entries = []

        def log(self, entry):
            self.entries.append(entry)

        def close(self):
            pass

    mine = Mine()
    entry = log_report(_hand_report(), [mine, f"tensorboard:{tmp_path / 'tb'}", f"mlflow:{tmp_path / 'ml'}"],
                       step=7, prefix="digits")
    assert mine.entries == [entry] and isinstance(entry, LogEntry)
    assert [e.step for e in _accumulator(tmp_path / "tb").Scalars("digits/knn/top1")] == [7]


def test_targets_it_cannot_log_to(tmp_path):
    with pytest.raises(ValueError, match="tensorboard:<dir>"):
        log_report(_hand_report(), "neptune:project")
    with pytest.raises(ValueError, match="tensorboard:<dir>"):
        log_report(_hand_report(), "runs/x")
    with pytest.raises(TypeError, match="cannot log to a int"):
        log_report(_hand_report(), 3)
    with pytest.raises(TypeError, match="EvaluationReport or a Comparison"):
        log_report({"knn": 1}, [])
    pytest.importorskip("tensorboard")
    with trackers.TensorBoardTracker(tmp_path) as tb, pytest.raises(ValueError, match="step"):
        log_report(_hand_report(), tb, step=-1)


def test_a_missing_tracker_package_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"embedeval-client\[wandb\]"):
        trackers.WandbTracker()


# ---------------------------------------------------------------------------
# embedeval.torch.evaluate_module(log_to=...)
# ---------------------------------------------------------------------------

from test_torch import CARD, _Module, _Tensor, fake_torch  # noqa: E402,F401  (the torch stand-in)


def test_evaluate_module_checks_where_to_log_before_evaluating(fake_torch):
    from embedeval.torch import evaluate_module

    with embedeval.Client("127.0.0.1:1") as client:  # nothing listens: no call may be made
        with pytest.raises(ValueError, match="cannot log to"):
            evaluate_module(client, _Module(2), _Tensor(), name="m", loss="infonce", temperature=0.5,
                            dataset="digits", log_to="nowhere")
        with pytest.raises(ValueError, match="kind"):
            evaluate_module(client, _Module(2), _Tensor(), name="m", loss="infonce", temperature=0.5,
                            dataset="digits", log_to=[], log_figures=["scatter"])
        with pytest.raises(ValueError, match="log_to"):
            evaluate_module(client, _Module(2), _Tensor(), name="m", loss="infonce", temperature=0.5,
                            dataset="digits", log_figures=["negatives"])
    assert fake_torch == []


def test_evaluate_module_logs_each_epoch(fake_torch, client, tmp_path, mlflow_file_store):
    pytest.importorskip("tensorboard")
    from mlflow.tracking import MlflowClient

    from embedeval.torch import evaluate_module

    tb, ml = f"tensorboard:{tmp_path / 'tb'}", f"mlflow:{tmp_path / 'ml'}"
    reports = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a figure the report cannot give
            for epoch in range(3):
                reports.append(evaluate_module(
                    client, _Module(outputs=2), _Tensor(), name="py-logged", loss="infonce", temperature=0.5,
                    dataset="digits", card=CARD, spec={"skip_linear": True}, step=epoch,
                    log_to=[tb, ml], log_figures=["negatives"]))
    finally:
        client.delete_model("py-logged")
    assert all(r.ok for r in reports)
    acc = _accumulator(tmp_path / "tb")
    for name in report_scalars(reports[0]):
        events = acc.Scalars(name)
        assert [e.step for e in events] == [0, 1, 2], name
        assert [e.value for e in events] == [float(np.float32(report_scalars(r)[name])) for r in reports]
    assert [i.step for i in acc.Images("figures/negatives")] == [0, 1, 2]
    mlflow_tracker = trackers.tracker(ml)
    history = MlflowClient(tracking_uri=(tmp_path / "ml").resolve().as_uri()).get_metric_history(
        mlflow_tracker.run_id, "knn/top1")
    assert sorted((m.step, m.value) for m in history) == [(i, r.knn.top1) for i, r in enumerate(reports)]
