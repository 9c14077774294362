"""The client's own logic, without a server."""
from __future__ import annotations

import pickle
import socket
import time

import grpc
import numpy as np
import pytest

import embedeval
from embedeval import _toml
from embedeval._proto import evaluation_pb2, model_pb2
from embedeval.client import figure_request, parse_url
from embedeval.errors import error_for, from_rpc_error
from embedeval.types import MetricSpec, spec_to_proto


@pytest.mark.parametrize(
    "url, target, tls",
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", None),
        ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
        ("https://example.org:8443/", "example.org:8443", True),
        ("HTTPS://example.org", "example.org:443", True),
        ("http://localhost", "localhost:80", False),
        ("[::1]:50051", "[::1]:50051", None),
    ],
)
def test_urls(url, target, tls):
    assert parse_url(url) == (target, tls)


@pytest.mark.parametrize("url", ["ftp://h:1", "h", "http://h:1/path", "", "https://"])
def test_bad_urls(url):
    with pytest.raises(ValueError):
        parse_url(url)


def test_ca_cert_means_tls_and_http_refuses_it(tmp_path):
    pem = tmp_path / "ca.pem"
    pem.write_bytes(b"")
    with embedeval.Client("127.0.0.1:1", ca_cert=pem) as c:
        assert c.tls
    with pytest.raises(ValueError):
        embedeval.Client("http://127.0.0.1:1", ca_cert=pem)
    with embedeval.Client("http://127.0.0.1:1") as c:
        assert not c.tls


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.parametrize(
    "code, cls",
    [
        (grpc.StatusCode.NOT_FOUND, embedeval.NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, embedeval.InvalidArgument),
        (grpc.StatusCode.ALREADY_EXISTS, embedeval.AlreadyExists),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, embedeval.ResourceExhausted),
        (grpc.StatusCode.FAILED_PRECONDITION, embedeval.FailedPrecondition),
        (grpc.StatusCode.UNAVAILABLE, embedeval.Unavailable),
        (grpc.StatusCode.CANCELLED, embedeval.Cancelled),
        (grpc.StatusCode.DEADLINE_EXCEEDED, embedeval.DeadlineExceeded),
        (grpc.StatusCode.UNAUTHENTICATED, embedeval.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, embedeval.PermissionDenied),
        (grpc.StatusCode.INTERNAL, embedeval.Internal),
    ],
)
def test_error_mapping(code, cls):
    err = from_rpc_error(_FakeRpcError(code, "why"))
    assert type(err) is cls and isinstance(err, embedeval.EmbedevalError)
    assert err.code == code and err.message == "why" and "why" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and again.code == code and again.message == "why"


def test_unmapped_codes_are_the_base_class():
    err = error_for(grpc.StatusCode.UNIMPLEMENTED, "no")
    assert type(err) is embedeval.EmbedevalError and err.code == grpc.StatusCode.UNIMPLEMENTED
    assert isinstance(error_for(grpc.StatusCode.NOT_FOUND, ""), LookupError)
    assert isinstance(error_for(grpc.StatusCode.INVALID_ARGUMENT, ""), ValueError)


def test_idempotent_calls_retry_on_unavailable_and_others_do_not():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with embedeval.Client(f"127.0.0.1:{port}", retries=2, backoff=0.2) as c:
        start = time.monotonic()
        with pytest.raises(embedeval.Unavailable):
            c.list_models()
        retried = time.monotonic() - start
        start = time.monotonic()
        with pytest.raises(embedeval.Unavailable):
            c.delete_model("x")
        once = time.monotonic() - start
    assert retried >= 0.5  # backoff 0.2 + 0.4 (+-10%)
    assert once < 0.5


def test_spec_conversion():
    assert spec_to_proto(None) is None
    m = spec_to_proto({"knn_k": 20, "skip_linear": True, "uniformity_t": 2})
    assert m.HasField("knn_k") and m.knn_k == 20 and m.skip_linear and m.uniformity_t == 2.0
    assert not m.HasField("linear_c")
    assert spec_to_proto(MetricSpec(linear_c=0.5)).linear_c == 0.5
    assert spec_to_proto(m) is m
    with pytest.raises(TypeError, match="knn"):
        spec_to_proto({"knn": 3})
    with pytest.raises(TypeError):
        spec_to_proto(3)


def test_card_from_flags():
    text = _toml.build_card(loss="infonce", temperature=0.2, preset="imagenet")
    assert _toml.loads(text) == {"training": {"loss": "infonce", "temperature": 0.2}, "input": {"preset": "imagenet"}}


def test_card_text_is_kept_without_flags_and_merged_with_them(tmp_path):
    card = '# my card\ndescription = "x"\n[training]\nloss = "simple"\nepochs = 3\n[input]\nscale = 0.0625\nmean = [0.0]\n'
    assert _toml.build_card(card) == card
    path = tmp_path / "model.toml"
    path.write_text(card)
    assert _toml.build_card(str(path)) == card
    merged = _toml.loads(_toml.build_card(path, loss="infonce", temperature=0.5, embedding_output="z"))
    assert merged == {
        "description": "x",
        "training": {"loss": "infonce", "epochs": 3, "temperature": 0.5},
        "input": {"scale": 0.0625, "mean": [0.0]},
        "outputs": {"embedding": "z"},
    }


def test_card_run_and_step_go_under_training(tmp_path):
    text = _toml.build_card(loss="infonce", temperature=0.2, run="r1", step=12)
    assert _toml.loads(text) == {"training": {"loss": "infonce", "temperature": 0.2, "run": "r1", "step": 12}}
    assert 'run = "r1"' in text and "step = 12" in text
    # Over a card's [training], next to what it says; step 0 is written, a missing one is not.
    card = tmp_path / "model.toml"
    card.write_text('[training]\nloss = "simple"\nepochs = 3\nrun = "old"\n[input]\nscale = 0.0625\n')
    merged = _toml.loads(_toml.build_card(card, run="new", step=0))
    assert merged == {"training": {"loss": "simple", "epochs": 3, "run": "new", "step": 0}, "input": {"scale": 0.0625}}
    assert "step" not in _toml.loads(_toml.build_card(card, run="new"))["training"]
    assert "step = 7\n" in _toml.build_card(card, step=np.uint64(7))
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="step"):
            _toml.build_card(card, step=bad)


def test_register_model_sends_run_and_step_in_the_card():
    sent = []

    class FakeModels:
        def RegisterModel(self, requests, timeout=None, metadata=None):
            sent.extend(requests)
            return model_pb2.ModelInfo(name="m", training=model_pb2.TrainingInfo(loss="infonce", run="r", step=5))

    with embedeval.Client("127.0.0.1:1") as c:
        c._models = FakeModels()
        info = c.register_model("m", b"onnx", loss="infonce", temperature=0.5, run="r", step=5)
    card = _toml.loads(sent[0].card.card_toml)
    assert card["training"] == {"loss": "infonce", "temperature": 0.5, "run": "r", "step": 5}
    assert sent[1].chunk == b"onnx"
    assert (info.training.run, info.training.step) == ("r", 5)


def test_card_needs_a_loss_and_valid_toml():
    with pytest.raises(ValueError, match="loss"):
        _toml.build_card(None)
    with pytest.raises(ValueError, match="TOML"):
        _toml.build_card("[training\nloss=")


def test_toml_writer_round_trips():
    table = {
        "name": 'we"ird\\ \n\t\x01 ü',
        "n": 3, "f": 1e-7, "neg": -0.5, "inf": float("inf"), "yes": True,
        "arr": [1, 2, 3], "nested": [[1, 2], ["a"]], "inline": [{"a": 1}],
        "a": {"b": {"c": 1, "key with space": "v"}, "d": []},
    }
    assert _toml.loads(_toml.dumps(table)) == table


def test_local_argument_checks():
    with embedeval.Client("127.0.0.1:1") as c:
        with pytest.raises(ValueError):
            c.embed("m")
        with pytest.raises(ValueError):
            c.embed("m", images=np.zeros((1, 8, 8, 1), np.uint8), dataset="d")
        with pytest.raises(TypeError):
            c.embed("m", images=np.zeros((1, 8, 8, 1), np.int32))
        with pytest.raises(ValueError):
            c.evaluate_embeddings(train=(np.zeros((3, 2)), [0, 1, 2]))
        with pytest.raises(ValueError):
            c.evaluate_embeddings(test=(np.zeros((3, 2)), [0, 1]))
        with pytest.raises(ValueError):
            c.evaluate_embeddings(test=(np.zeros((3, 2)), [0, 1, 2]), test_positive=np.zeros((2, 2)))
        with pytest.raises(ValueError):
            c.register_arrays("x", {"test": (np.zeros((2, 4, 4, 1), np.uint8), [0])})
        with pytest.raises(ValueError):
            c.register_arrays("x", {"a/b": (np.zeros((1, 4, 4, 1), np.uint8), [0])})
        with pytest.raises(ValueError):
            c.register_arrays("x", {"a": (np.zeros((1, 4, 4, 1), np.uint8), [0]),
                                    "b": (np.zeros((1, 4, 5, 1), np.uint8), [0])})
        with pytest.raises(TypeError):
            c.register_arrays("x", {"a": (np.full((1, 4, 4, 1), 300), [0])})
        with pytest.raises(ValueError):
            c.register_model("x", b"onnx")  # no loss
        with pytest.raises(ValueError):
            c.compare()
        with pytest.raises(ValueError, match="kind"):
            c.render_figure("id", "scatter")
        with pytest.raises(ValueError, match="format"):
            c.render_figure("id", "ut", "jpg")
        with pytest.raises(ValueError, match="size"):
            c.render_figure("id", "ut", "png", "a4")


def test_comparison_lookup_and_rows():
    rows = [embedeval.EvaluationReport(model="a", status=embedeval.EvaluationStatus.COMPLETED),
            embedeval.EvaluationReport(model="b", status=embedeval.EvaluationStatus.SKIPPED, error="channels")]
    comp = embedeval.Comparison(rows=rows)
    assert comp["b"].error == "channels" and comp[0].model == "a" and len(comp) == 2
    assert [r["status"] for r in (row.to_row() for row in comp)] == ["COMPLETED", "SKIPPED"]
    with pytest.raises(embedeval.EvaluationFailed) as e:
        comp["b"].raise_for_status()
    assert e.value.report is rows[1] and "channels" in str(e.value)
    assert comp["a"].raise_for_status() is rows[0]


@pytest.mark.parametrize(
    "kind, number",
    [("ut", evaluation_pb2.UNIFORMITY_TOLERANCE), ("accuracy", evaluation_pb2.ACCURACY),
     ("negatives", evaluation_pb2.NEGATIVES), ("penalty", evaluation_pb2.PENALTY), ("PENALTY", evaluation_pb2.PENALTY)],
)
def test_figure_kind_names(kind, number):
    assert figure_request("c1", kind).kind == number


def test_figure_request_names_and_defaults():
    r = figure_request("c1")
    assert (r.id, r.kind, r.format, r.size) == ("c1", evaluation_pb2.UNIFORMITY_TOLERANCE, evaluation_pb2.SVG,
                                                evaluation_pb2.SCREEN)
    r = figure_request("e1", "accuracy", "png", "column")
    assert (r.kind, r.format, r.size) == (evaluation_pb2.ACCURACY, evaluation_pb2.PNG, evaluation_pb2.COLUMN)
    assert figure_request("e1", format="svg", size="screen").format == evaluation_pb2.SVG
    # The CLI's names only: neither the proto names of other spellings nor numbers.
    for bad in ({"kind": "uniformity_tolerance"}, {"kind": ""}, {"kind": 1}, {"format": "jpeg"},
                {"format": None}, {"size": "a4"}, {"size": "FIGURE_SIZE_UNSPECIFIED"}):
        with pytest.raises(ValueError) as e:
            figure_request("e1", **bad)
        assert "one of" in str(e.value)


def test_figure_save_show_and_dict(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    msg = evaluation_pb2.Figure(data=png, media_type="image/png", width=1050, height=840,
                                evaluation_ids=["e1", "e2"], marks=2)
    f = embedeval.Figure.from_proto(msg)
    assert (f.width, f.height, f.evaluation_ids, f.marks, f.format) == (1050, 840, ["e1", "e2"], 2, "png")
    assert f.data == png and f._repr_png_() == png and f._repr_svg_() is None
    assert "data" not in repr(f) and "1050" in repr(f)
    assert f.save(tmp_path / "fig.png").read_bytes() == png
    assert f.save(str(tmp_path / "fig.bin")).read_bytes() == png
    with pytest.raises(ValueError, match="svg"):
        f.save(tmp_path / "fig.svg")
    assert not (tmp_path / "fig.svg").exists()
    import base64
    import json
    d = f.to_dict()
    assert base64.b64decode(d["data"]) == png and d["media_type"] == "image/png" and d["marks"] == 2
    json.dumps(d)
    svg = embedeval.Figure(data=b'<svg width="1280" height="860"/>', media_type="image/svg+xml", width=1280,
                           height=860)
    assert svg.format == "svg" and svg._repr_svg_().startswith("<svg") and svg._repr_png_() is None
    assert svg.save(tmp_path / "fig.SVG").read_bytes() == svg.data


def test_comparison_and_accepted_ids():
    msg = evaluation_pb2.Comparison(rows=[evaluation_pb2.EvaluationReport(id="e1", model="a")], plot_svg="<svg/>",
                                    accuracy_plot_svg="<svg></svg>", id="c1")
    comp = embedeval.Comparison.from_proto(msg)
    assert comp.id == "c1" and comp.plot_svg == b"<svg/>" and comp["a"].id == "e1"
    assert comp.to_dict()["id"] == "c1"
    accepted = embedeval.Accepted.from_proto(
        evaluation_pb2.Accepted(evaluation_ids=["e1", "e2"], status=evaluation_pb2.QUEUED, comparison_id="c1"))
    assert accepted.comparison_id == "c1" and accepted.status is embedeval.EvaluationStatus.QUEUED
    with embedeval.Client("127.0.0.1:1") as c:
        handle = embedeval.ComparisonHandle(c, accepted)
        assert handle.comparison_id == "c1" and handle.ids == ["e1", "e2"] and "c1" in repr(handle)


def _run_message():
    done = evaluation_pb2.EvaluationReport(id="e10", model="r-step10", model_sha256="a" * 64, dataset="digits",
                                           status=evaluation_pb2.COMPLETED, uniformity=3.4, tolerance=0.3,
                                           effective_rank=46.0, knn=evaluation_pb2.KnnResult(top1=0.97))
    return evaluation_pb2.Run(
        name="r", dataset="digits",
        checkpoints=[
            evaluation_pb2.Checkpoint(step=10, model="r-step10", model_sha256="a" * 64, report=done),
            evaluation_pb2.Checkpoint(step=20, model="r-step20", model_sha256="b" * 64),
        ],
        warnings=[evaluation_pb2.RunWarning(kind="dimensional_collapse", step=20, message="rank fell")],
    )


def test_run_from_proto():
    run = embedeval.Run.from_proto(_run_message())
    assert (run.name, run.dataset, len(run)) == ("r", "digits", 2)
    first, second = run
    assert isinstance(first, embedeval.Checkpoint) and (first.step, first.model) == (10, "r-step10")
    assert isinstance(first.report, embedeval.EvaluationReport) and first.report.id == "e10"
    assert first.report.status is embedeval.EvaluationStatus.COMPLETED and first.report.alignment is None
    assert second.report is None and second.model_sha256 == "b" * 64
    assert [c.step for c in run.checkpoints] == [10, 20]
    (w,) = run.warnings
    assert isinstance(w, embedeval.RunWarning) and (w.kind, w.step, w.message) == ("dimensional_collapse", 20,
                                                                                    "rank fell")
    d = run.to_dict()
    assert d["checkpoints"][0]["report"]["status"] == "COMPLETED" and d["checkpoints"][1]["report"] is None
    assert d["warnings"] == [{"kind": "dimensional_collapse", "step": 20, "message": "rank fell"}]
    import json
    json.dumps(d)
    assert embedeval.Run.from_proto(evaluation_pb2.Run(name="empty", dataset="d")).checkpoints == []
    summary = embedeval.RunSummary.from_proto(evaluation_pb2.RunSummary(
        name="r", checkpoints=2, first_step=10, last_step=20, loss="infonce", temperature=0.2))
    assert (summary.checkpoints, summary.first_step, summary.last_step, summary.temperature) == (2, 10, 20, 0.2)
    training = embedeval.TrainingInfo.from_proto(model_pb2.TrainingInfo(loss="infonce", run="r", step=20))
    assert (training.run, training.step) == ("r", 20)
    assert embedeval.TrainingInfo.from_proto(model_pb2.TrainingInfo(loss="simple")).run == ""


def test_run_to_pandas():
    pd = pytest.importorskip("pandas")
    df = embedeval.Run.from_proto(_run_message()).to_pandas()
    assert list(df["step"]) == [10, 20] and list(df["model"]) == ["r-step10", "r-step20"]
    assert list(df.columns) == ["step", *embedeval.EvaluationReport().to_row()]
    assert df["id"][0] == "e10" and df["status"][0] == "COMPLETED" and df["uniformity"][0] == 3.4
    assert df["knn_top1"][0] == 0.97 and pd.isna(df["uniformity"][1]) and pd.isna(df["id"][1])
    assert len(embedeval.Run(name="empty").to_pandas()) == 0


def test_get_run_needs_a_dataset():
    with embedeval.Client("127.0.0.1:1") as c:
        with pytest.raises(ValueError, match="dataset"):
            c.get_run("r", "")


# -- the contract's additions: loss names, warnings, exclusions, augmentation --


def test_model_warnings_and_loss_name_convert():
    msg = model_pb2.ModelInfo(
        name="m", training=model_pb2.TrainingInfo(loss="other", loss_name="my-loss", temperature=0.0),
        warnings=["input normalisation not given: ... give --preset"], inferred=["input.shape"],
    )
    info = embedeval.ModelInfo.from_proto(msg)
    assert (info.training.loss, info.training.loss_name) == ("other", "my-loss")
    assert info.warnings == ["input normalisation not given: ... give --preset"]
    assert info.to_dict()["warnings"] == info.warnings and info.to_dict()["training"]["loss_name"] == "my-loss"
    bare = embedeval.ModelInfo.from_proto(model_pb2.ModelInfo(name="m", training=model_pb2.TrainingInfo(loss="simple")))
    assert bare.warnings == [] and bare.training.loss_name == ""


def test_report_warnings_loss_name_and_row():
    msg = evaluation_pb2.EvaluationReport(
        id="e1", model="m", loss="other", loss_name="my-loss", status=evaluation_pb2.COMPLETED,
        temperature=0.2, positive_similarity=0.9, effective_rank=40.0, penalty_entropy=1.5,
        nearest_negative_similarity=[0.8], warnings=["first: give --preset", "second"],
    )
    r = embedeval.EvaluationReport.from_proto(msg)
    assert r.warnings == ["first: give --preset", "second"] and r.loss_name == "my-loss"
    row = r.to_row()
    assert row["warnings"] == "first: give --preset; second"
    # The canonical column names are all still there, with their values.
    for column in ("model", "status", "loss", "temperature", "dataset", "num_test", "num_train", "embedding_dim",
                   "uniformity", "uniformity_loss", "tolerance", "alignment", "positive_similarity",
                   "nn1_similarity", "penalty_entropy", "effective_negatives", "effective_rank", "knn_top1",
                   "knn_top5", "linear_top1", "linear_top5", "error", "id"):
        assert column in row, column
    assert (row["temperature"], row["positive_similarity"], row["nn1_similarity"]) == (0.2, 0.9, 0.8)
    assert (row["penalty_entropy"], row["effective_rank"]) == (1.5, 40.0)
    assert embedeval.EvaluationReport().to_row()["warnings"] == ""


def test_comparison_and_accepted_carry_the_excluded_models():
    excluded = [
        evaluation_pb2.ExcludedModel(model="rgb", kind="does not fit", reason="3 channels, the dataset has 1"),
        evaluation_pb2.ExcludedModel(model="copy", kind="duplicate", reason="same ONNX file", same_as="orig"),
    ]
    comp = embedeval.Comparison.from_proto(evaluation_pb2.Comparison(
        rows=[evaluation_pb2.EvaluationReport(id="e1", model="orig")], id="c1", excluded=excluded))
    assert all(isinstance(e, embedeval.ExcludedModel) for e in comp.excluded)
    assert [(e.model, e.kind, e.same_as) for e in comp.excluded] == [("rgb", "does not fit", ""),
                                                                       ("copy", "duplicate", "orig")]
    assert comp.excluded[0].reason.startswith("3 channels") and len(comp) == 1
    assert comp.to_dict()["excluded"][1] == {"model": "copy", "kind": "duplicate", "reason": "same ONNX file",
                                             "same_as": "orig"}
    assert embedeval.Comparison.from_proto(evaluation_pb2.Comparison(id="c2")).excluded == []
    accepted = embedeval.Accepted.from_proto(evaluation_pb2.Accepted(
        evaluation_ids=["e1"], status=evaluation_pb2.QUEUED, comparison_id="c1", excluded=excluded))
    assert [e.model for e in accepted.excluded] == ["rgb", "copy"]
    assert isinstance(accepted.excluded[1], embedeval.ExcludedModel) and accepted.excluded[1].same_as == "orig"
    with embedeval.Client("127.0.0.1:1") as c:
        handle = embedeval.ComparisonHandle(c, accepted)
        assert [e.model for e in handle.excluded] == ["rgb", "copy"]


@pytest.mark.parametrize(
    "augmentation",
    [
        "instdisc",
        {"recipe": "instdisc", "crop_scale_min": 0.5, "blur": 0.25},
        embedeval.Augmentation(recipe="instdisc", crop_scale_min=0.5, blur=0.25),
        evaluation_pb2.Augmentation(recipe="instdisc", crop_scale_min=0.5, blur=0.25),
    ],
    ids=["string", "dict", "dataclass", "message"],
)
def test_spec_augmentation_forms(augmentation):
    for spec in ({"augmentation": augmentation, "knn_k": 20}, MetricSpec(augmentation=augmentation, knn_k=20)):
        m = spec_to_proto(spec)
        assert m.HasField("augmentation") and m.augmentation.recipe == "instdisc" and m.knn_k == 20
        assert not m.HasField("uniformity_t") and m.positives_split == ""
        if isinstance(augmentation, str):
            assert not m.augmentation.HasField("crop_scale_min") and not m.augmentation.HasField("blur")
        else:
            assert m.augmentation.crop_scale_min == 0.5 and m.augmentation.blur == 0.25
        # Unset floats stay unset (the recipe's values), set ones are sent even when 0.
        for name in ("crop_scale_max", "jitter", "grayscale", "flip"):
            assert not m.augmentation.HasField(name), name
    assert isinstance(MetricSpec(augmentation=augmentation).augmentation, embedeval.Augmentation)


def test_spec_augmentation_zero_and_positives_split():
    m = spec_to_proto({"augmentation": {"recipe": "simclr", "flip": 0, "grayscale": np.float32(0.5)},
                       "positives_split": "test_views"})
    assert m.augmentation.HasField("flip") and m.augmentation.flip == 0.0
    assert m.augmentation.grayscale == 0.5 and m.positives_split == "test_views"
    m = spec_to_proto(MetricSpec(positives_split="test_views"))
    assert not m.HasField("augmentation") and m.positives_split == "test_views"
    # No augmentation given: none sent (the server's default recipe).
    assert not spec_to_proto({"knn_k": 5}).HasField("augmentation")
    # An empty Augmentation is sent as an empty message (every value the default recipe's).
    m = spec_to_proto({"augmentation": {}})
    assert m.HasField("augmentation") and m.augmentation.recipe == ""


def test_spec_augmentation_errors():
    with pytest.raises(TypeError, match="crop_scale"):
        spec_to_proto({"augmentation": {"recipe": "simclr", "crop_scale": 0.5}})
    with pytest.raises(TypeError, match="recipe"):
        spec_to_proto({"augmentation": 3})
    with pytest.raises(TypeError, match="blur"):
        spec_to_proto({"augmentation": {"blur": "strong"}})
    with pytest.raises(TypeError, match="flip"):
        spec_to_proto({"augmentation": {"flip": True}})
    with pytest.raises(TypeError, match="MetricSpec"):
        spec_to_proto({"augmentation": evaluation_pb2.MetricSpec()})


def test_report_spec_echoes_the_augmentation():
    msg = evaluation_pb2.EvaluationReport(id="e1", spec=evaluation_pb2.MetricSpec(
        knn_k=200, augmentation=evaluation_pb2.Augmentation(recipe="simclr", crop_scale_min=0.2, crop_scale_max=1.0,
                                                            jitter=0.4, grayscale=0.2, flip=0.5, blur=0.0)))
    spec = embedeval.EvaluationReport.from_proto(msg).spec
    aug = spec.augmentation
    assert isinstance(aug, embedeval.Augmentation) and aug.recipe == "simclr"
    assert (aug.crop_scale_min, aug.crop_scale_max, aug.jitter, aug.grayscale, aug.flip, aug.blur) == (
        0.2, 1.0, 0.4, 0.2, 0.5, 0.0)
    assert spec.positives_split == "" and spec.to_dict()["augmentation"]["crop_scale_min"] == 0.2
    # The echoed spec goes back as it came (the same settings again).
    assert spec.to_proto() == msg.spec
    # A report of a spec without one: None, and unset floats None.
    assert embedeval.EvaluationReport.from_proto(
        evaluation_pb2.EvaluationReport(spec=evaluation_pb2.MetricSpec())).spec.augmentation is None
    partial = embedeval.Augmentation.from_proto(evaluation_pb2.Augmentation(recipe="none"))
    assert partial == embedeval.Augmentation(recipe="none") and partial.blur is None


def test_card_loss_name_goes_under_training(tmp_path):
    text = _toml.build_card(loss="other", loss_name="my-loss")
    assert _toml.loads(text) == {"training": {"loss": "other", "loss_name": "my-loss"}}
    card = tmp_path / "model.toml"
    card.write_text('[training]\nloss = "other"\nloss_name = "old"\n')
    assert _toml.loads(_toml.build_card(card, loss_name="new"))["training"] == {"loss": "other", "loss_name": "new"}
    assert _toml.build_card(card) == card.read_text()


class _FakeCall:
    """A server-streaming call of fixed events (what ``Client._stream`` iterates)."""

    def __init__(self, events):
        self._events = list(events)

    def __iter__(self):
        return iter(self._events)

    def cancel(self):
        pass


class _FakeEvaluation:
    """The EvaluationService stub, recording what the client sends."""

    def __init__(self):
        self.sent = []

    def Evaluate(self, request, timeout=None, metadata=None):
        self.sent.append(request)
        report = evaluation_pb2.EvaluationReport(id="e1", model=request.model, status=evaluation_pb2.COMPLETED,
                                                 spec=request.spec)
        return _FakeCall([evaluation_pb2.EvaluateEvent(report=report)])

    def Compare(self, request, timeout=None, metadata=None):
        self.sent.append(request)
        comparison = evaluation_pb2.Comparison(
            id="c1", excluded=[evaluation_pb2.ExcludedModel(model="b", kind="does not fit", reason="channels")])
        return _FakeCall([evaluation_pb2.CompareEvent(comparison=comparison)])

    def EvaluateEmbeddings(self, requests, timeout=None, metadata=None):
        requests = list(requests)
        self.sent.append(requests[0].header)
        h = requests[0].header
        return evaluation_pb2.EvaluationReport(id="e2", loss=h.loss, loss_name=h.loss_name,
                                               status=evaluation_pb2.COMPLETED)

    def DeleteEvaluation(self, request, timeout=None, metadata=None):
        self.sent.append(request)
        return evaluation_pb2.DeleteEvaluationResponse(id=request.id)


def test_evaluate_and_compare_send_augmentation_and_positives_split():
    fake = _FakeEvaluation()
    with embedeval.Client("127.0.0.1:1") as c:
        c._evaluation = fake
        r = c.evaluate("m", "digits", augmentation="none", progress=False)
        assert fake.sent[-1].spec.augmentation.recipe == "none" and r.spec.augmentation.recipe == "none"
        # Merged into a spec given as a dict, a dataclass or a message (which is not changed).
        spec_msg = evaluation_pb2.MetricSpec(knn_k=20)
        for spec in ({"knn_k": 20}, MetricSpec(knn_k=20), spec_msg):
            c.evaluate("m", "digits", spec=spec, augmentation={"recipe": "simclr", "crop_scale_min": 0.5},
                       positives_split="views", progress=False)
            sent = fake.sent[-1].spec
            assert sent.knn_k == 20 and sent.positives_split == "views"
            assert sent.augmentation.recipe == "simclr" and sent.augmentation.crop_scale_min == 0.5
        assert not spec_msg.HasField("augmentation") and spec_msg.positives_split == ""
        c.evaluate("m", "digits", augmentation=embedeval.Augmentation(recipe="instdisc", jitter=0.8), progress=False)
        assert fake.sent[-1].spec.augmentation.jitter == pytest.approx(0.8)
        # Neither given: the spec as it was (None: the server's defaults).
        c.evaluate("m", "digits", progress=False)
        assert not fake.sent[-1].HasField("spec")
        c.evaluate("m", "digits", positives_split="views", progress=False)
        assert fake.sent[-1].spec.positives_split == "views" and not fake.sent[-1].spec.HasField("augmentation")

        comp = c.compare(["m", "b"], dataset="digits", spec={"skip_linear": True}, augmentation="instdisc",
                         progress=False)
        assert fake.sent[-1].spec.augmentation.recipe == "instdisc" and fake.sent[-1].spec.skip_linear
        assert [(e.model, e.kind) for e in comp.excluded] == [("b", "does not fit")] and comp.rows == []

        # Given twice: refused before any call.
        count = len(fake.sent)
        with pytest.raises(ValueError, match="augmentation"):
            c.evaluate("m", "digits", spec={"augmentation": "none"}, augmentation="simclr")
        with pytest.raises(ValueError, match="positives_split"):
            c.compare(dataset="digits", spec={"positives_split": "a"}, positives_split="b")
        with pytest.raises(TypeError):
            c.evaluate("m", "digits", augmentation=0.5)
        with pytest.raises(TypeError, match="positives_split"):
            c.evaluate("m", "digits", positives_split=3)
        assert len(fake.sent) == count


def test_evaluate_embeddings_sends_loss_name():
    fake = _FakeEvaluation()
    with embedeval.Client("127.0.0.1:1") as c:
        c._evaluation = fake
        r = c.evaluate_embeddings(test=(np.eye(3), [0, 1, 2]), loss="other", loss_name="my-loss")
    assert (fake.sent[-1].loss, fake.sent[-1].loss_name) == ("other", "my-loss")
    assert (r.loss, r.loss_name) == ("other", "my-loss")


def test_delete_evaluation_and_rename_model_send_their_requests():
    fake = _FakeEvaluation()
    renamed = []

    class FakeModels:
        def RenameModel(self, request, timeout=None, metadata=None):
            renamed.append(request)
            return model_pb2.ModelInfo(name=request.new_name, sha256="a" * 64)

    with embedeval.Client("127.0.0.1:1") as c:
        c._evaluation = fake
        c._models = FakeModels()
        assert c.delete_evaluation("e1") is None
        assert isinstance(fake.sent[-1], evaluation_pb2.DeleteEvaluationRequest) and fake.sent[-1].id == "e1"
        info = c.rename_model("old", "new")
        assert (renamed[-1].name, renamed[-1].new_name) == ("old", "new")
        assert isinstance(info, embedeval.ModelInfo) and info.name == "new" and info.sha256 == "a" * 64
        with pytest.raises(ValueError):
            c.delete_evaluation("")
        with pytest.raises(ValueError):
            c.rename_model("old", "")
    assert len(renamed) == 1


def test_register_model_sends_loss_name_in_the_card():
    sent = []

    class FakeModels:
        def RegisterModel(self, requests, timeout=None, metadata=None):
            sent.extend(requests)
            return model_pb2.ModelInfo(name="m", training=model_pb2.TrainingInfo(loss="other", loss_name="my-loss"))

    with embedeval.Client("127.0.0.1:1") as c:
        c._models = FakeModels()
        info = c.register_model("m", b"onnx", loss="other", loss_name="my-loss")
    assert _toml.loads(sent[0].card.card_toml)["training"] == {"loss": "other", "loss_name": "my-loss"}
    assert (info.training.loss, info.training.loss_name) == ("other", "my-loss")


def test_comparison_to_pandas_keeps_the_canonical_columns():
    pd = pytest.importorskip("pandas")
    comp = embedeval.Comparison(rows=[embedeval.EvaluationReport(model="a", temperature=0.5, positive_similarity=0.9,
                                                                 effective_rank=30.0, warnings=["w1", "w2"])])
    frame = comp.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert {"temperature", "positive_similarity", "effective_rank", "nn1_similarity", "penalty_entropy",
            "warnings"} <= set(frame.columns)
    assert frame["warnings"][0] == "w1; w2" and frame["effective_rank"][0] == 30.0
