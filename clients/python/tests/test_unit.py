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
from embedeval._proto import dataset_pb2, evaluation_pb2, model_pb2
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
    card = (
        '# my card\ndescription = "x"\n[training]\nloss = "simple"\nepochs = 3\n[input]\nscale = 0.0625\nmean = [0.0]\n'
    )
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
     ("negatives", evaluation_pb2.NEGATIVES), ("penalty", evaluation_pb2.PENALTY), ("PENALTY", evaluation_pb2.PENALTY),
     ("classes", evaluation_pb2.CLASSES), ("confusion", evaluation_pb2.CONFUSION), ("pareto", evaluation_pb2.PARETO)],
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
    # The CLI's names, derived from the proto's FigureKind: each kind by its
    # name in lower case, a name of several words also by its initials.
    assert figure_request("e1", "uniformity_tolerance").kind == evaluation_pb2.UNIFORMITY_TOLERANCE
    from embedeval.client import FIGURE_KINDS
    assert set(FIGURE_KINDS.values()) == {v for _, v in evaluation_pb2.FigureKind.items() if v}
    assert FIGURE_KINDS["ut"] == FIGURE_KINDS["uniformity_tolerance"]
    # Neither other spellings nor numbers.
    for bad in ({"kind": "uniformity-tolerance"}, {"kind": ""}, {"kind": 1}, {"format": "jpeg"},
                {"format": None}, {"size": "a4"}, {"size": "FIGURE_SIZE_UNSPECIFIED"}):
        with pytest.raises(ValueError) as e:
            figure_request("e1", **bad)
        assert "one of" in str(e.value)


def test_figure_request_axes():
    # Empty by default: the server's "temperature" and "loss".
    r = figure_request("c1", "accuracy")
    assert (r.x, r.group_by) == ("", "")
    r = figure_request("c1", "accuracy", "png", "column", x="seed", group_by="temperature")
    assert (r.kind, r.format, r.size, r.x, r.group_by) == (evaluation_pb2.ACCURACY, evaluation_pb2.PNG,
                                                           evaluation_pb2.COLUMN, "seed", "temperature")
    assert figure_request("c1", "accuracy", x="temperature", group_by="loss").x == "temperature"
    assert figure_request("c1", "accuracy", metric="map_at_r").metric == "map_at_r"
    assert figure_request("c1", "accuracy").metric == ""
    # Passed as they are, whatever the kind: the server checks the names
    # and refuses other axes than the defaults on other kinds.
    assert figure_request("c1", "ut", x="epochs").x == "epochs"
    r = figure_request("c1", "ut", label="seed")
    assert (r.kind, r.label, r.x) == (evaluation_pb2.UNIFORMITY_TOLERANCE, "seed", "")
    for bad in ({"x": 1}, {"x": None}, {"group_by": 0.5}, {"group_by": ["seed"]}, {"label": 2}):
        with pytest.raises(TypeError) as e:
            figure_request("c1", "accuracy", **bad)
        assert next(iter(bad)) in str(e.value)


def test_render_figure_sends_x_and_group_by():
    fake = _FakeEvaluation()
    with embedeval.Client("127.0.0.1:1") as c:
        c._evaluation = fake
        f = c.render_figure("c1", "accuracy", x="epochs", group_by="seed")
        sent = fake.sent[-1]
        assert isinstance(sent, evaluation_pb2.RenderFigureRequest)
        assert (sent.id, sent.kind, sent.x, sent.group_by) == ("c1", evaluation_pb2.ACCURACY, "epochs", "seed")
        assert isinstance(f, embedeval.Figure) and f.evaluation_ids == ["c1"]
        c.render_figure("c1", "accuracy", "png", "column", "step")
        assert (fake.sent[-1].format, fake.sent[-1].size, fake.sent[-1].x, fake.sent[-1].group_by) == (
            evaluation_pb2.PNG, evaluation_pb2.COLUMN, "step", "")
        c.render_figure("c1")
        assert (fake.sent[-1].kind, fake.sent[-1].x, fake.sent[-1].group_by) == (
            evaluation_pb2.UNIFORMITY_TOLERANCE, "", "")
        count = len(fake.sent)
        with pytest.raises(TypeError, match="group_by"):
            c.render_figure("c1", "accuracy", group_by=1)
        assert len(fake.sent) == count


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


def test_run_to_pandas_with_tags():
    pd = pytest.importorskip("pandas")
    msg = _run_message()
    # A checkpoint's tags: its card's [training] keys, its run and step among them.
    msg.checkpoints[0].report.tags.update({"run": "r", "step": "10", "seed": "0"})
    df = embedeval.Run.from_proto(msg).to_pandas()
    base = ["step", *embedeval.EvaluationReport().to_row()]
    assert list(df.columns) == [*base, "tag.run", "tag.seed", "tag.step"]
    assert (df["tag.run"][0], df["tag.seed"][0], df["tag.step"][0]) == ("r", "0", "10")
    assert df["step"][0] == 10 and pd.isna(df["tag.step"][1])  # the step column is the checkpoint's, not a tag


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
                   "knn_top5", "linear_top1", "linear_top5", "precision_at_1", "r_precision", "map_at_r", "nmi",
                   "ami", "error", "id"):
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

    def RenderFigure(self, request, timeout=None, metadata=None):
        self.sent.append(request)
        return evaluation_pb2.Figure(data=b"<svg/>", media_type="image/svg+xml", width=1280, height=860,
                                     evaluation_ids=[request.id], marks=1)


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


def test_report_row_and_comparison_frame_carry_the_tags():
    pd = pytest.importorskip("pandas")
    base = list(embedeval.EvaluationReport().to_row())
    assert base[-1] == "id" and not any(c.startswith("tag.") for c in base)
    a = embedeval.EvaluationReport(model="a", id="e1", temperature=0.2,
                                   tags={"seed": "1", "loss": "infonce", "temperature": "0.2"})
    row = a.to_row()
    # The canonical columns first, in their order, then the tags sorted by key.
    assert list(row) == [*base, "tag.loss", "tag.seed", "tag.temperature"]
    assert (row["tag.seed"], row["temperature"], row["tag.temperature"]) == ("1", 0.2, "0.2")
    b = embedeval.EvaluationReport(model="b", id="e2", tags={"seed": "2", "epochs": "300"})
    frame = embedeval.Comparison(rows=[a, b]).to_pandas()
    assert list(frame.columns) == [*base, "tag.epochs", "tag.loss", "tag.seed", "tag.temperature"]
    assert frame["tag.seed"].tolist() == ["1", "2"]
    assert pd.isna(frame["tag.epochs"][0]) and pd.isna(frame["tag.loss"][1])
    # Untagged rows: the columns as they were; no rows, no columns.
    assert list(embedeval.Comparison(rows=[embedeval.EvaluationReport(model="c")]).to_pandas().columns) == base
    assert embedeval.Comparison().to_pandas().empty


def test_comparison_to_pandas_keeps_the_canonical_columns():
    pd = pytest.importorskip("pandas")
    comp = embedeval.Comparison(rows=[embedeval.EvaluationReport(model="a", temperature=0.5, positive_similarity=0.9,
                                                                 effective_rank=30.0, warnings=["w1", "w2"])])
    frame = comp.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert {"temperature", "positive_similarity", "effective_rank", "nn1_similarity", "penalty_entropy",
            "warnings"} <= set(frame.columns)
    assert frame["warnings"][0] == "w1; w2" and frame["effective_rank"][0] == 30.0


def test_retrieval_and_clustering_convert_and_spec_lists_round_trip():
    msg = evaluation_pb2.EvaluationReport(
        id="e1", status=evaluation_pb2.COMPLETED,
        retrieval=evaluation_pb2.RetrievalResult(
            precision_at_1=0.9, r_precision=0.5, map_at_r=0.375, gallery="test", queries=98, lone_queries=2,
            recall_at_k=[evaluation_pb2.RecallAtK(k=1, recall=0.9), evaluation_pb2.RecallAtK(k=4, recall=0.96)]),
        clustering=evaluation_pb2.ClusteringResult(nmi=0.6, ami=0.55, clusters=10, iterations=20, restarts=1,
                                                   seed=1234, objective=812.5),
        per_class=_per_class_message(map_at_r=[0.5, 0.25, float("nan")], r_precision=[0.5, 0.5, float("nan")]),
    )
    r = embedeval.EvaluationReport.from_proto(msg)
    assert isinstance(r.retrieval, embedeval.RetrievalResult) and r.retrieval.gallery == "test"
    assert (r.retrieval.queries, r.retrieval.lone_queries) == (98, 2)
    assert r.retrieval.recall(4) == 0.96 and r.retrieval.recall(8) is None
    assert isinstance(r.clustering, embedeval.ClusteringResult) and r.clustering.seed == 1234
    row = r.to_row()
    assert (row["map_at_r"], row["r_precision"], row["precision_at_1"], row["nmi"], row["ami"]) == (
        0.375, 0.5, 0.9, 0.6, 0.55)
    assert r.per_class is not None and r.per_class.map_at_r[:2].tolist() == [0.5, 0.25]
    assert embedeval.EvaluationReport.from_proto(evaluation_pb2.EvaluationReport(id="e2")).retrieval is None
    spec = spec_to_proto(MetricSpec(recall_ks=[1, 5, 10], retrieval_gallery="test", kmeans_seed=7))
    assert list(spec.recall_ks) == [1, 5, 10] and spec.retrieval_gallery == "test" and spec.kmeans_seed == 7
    assert list(spec_to_proto(MetricSpec()).recall_ks) == [] and not spec_to_proto(MetricSpec()).HasField("kmeans_seed")


# -- per-class diagnostics ---------------------------------------------------


def _per_class_message(**overrides):
    fields = dict(
        labels=[3, 7, 11], counts=[4, 5, 1], tolerance=[0.5, 0.25, float("nan")],
        knn_top1=[1.0, 0.8, 0.0], linear_top1=[0.75, 1.0, 1.0],
        similarity=[0.5, 0.125, -0.25, 0.125, 0.25, 0.0, -0.25, 0.0, float("nan")],
        nearest_negative_classes=[6, 2, 0, 1, 9, 0, 1, 1, 0], nearest_negative_k=2,
    )
    fields.update(overrides)
    return evaluation_pb2.PerClass(**fields)


def test_per_class_converts_to_arrays():
    msg = evaluation_pb2.EvaluationReport(id="e1", status=evaluation_pb2.COMPLETED, per_class=_per_class_message())
    r = embedeval.EvaluationReport.from_proto(msg)
    p = r.per_class
    assert isinstance(p, embedeval.PerClass) and p.classes == 3 and p.nearest_negative_k == 2
    assert p.labels.dtype == np.int64 and p.labels.tolist() == [3, 7, 11]
    assert p.counts.dtype == np.int64 and p.counts.tolist() == [4, 5, 1]
    assert p.tolerance.dtype == np.float64 and p.tolerance[:2].tolist() == [0.5, 0.25] and np.isnan(p.tolerance[2])
    assert p.knn_top1.tolist() == [1.0, 0.8, 0.0] and p.linear_top1.tolist() == [0.75, 1.0, 1.0]
    # Row-major C x C: row a is the anchor's class.
    assert p.similarity.dtype == np.float32 and p.similarity.shape == (3, 3)
    assert p.similarity[0, 2] == -0.25 and p.similarity[1, 0] == 0.125 and np.isnan(p.similarity[2, 2])
    assert p.nearest_negative_classes.dtype == np.int64 and p.nearest_negative_classes.shape == (3, 3)
    assert p.nearest_negative_classes.tolist() == [[6, 2, 0], [1, 9, 0], [1, 1, 0]]
    assert (p.nearest_negative_classes.sum(axis=1) == p.counts * p.nearest_negative_k).all()
    # Absent: None.
    assert embedeval.EvaluationReport.from_proto(evaluation_pb2.EvaluationReport(id="e2")).per_class is None
    # Strict JSON (NaN as null) and equality despite the arrays and the NaN.
    d = r.to_dict()
    import json
    json.dumps(d, allow_nan=False)
    assert d["per_class"]["tolerance"] == [0.5, 0.25, None] and d["per_class"]["labels"] == [3, 7, 11]
    assert d["per_class"]["nearest_negative_classes"][1] == [1, 9, 0] and d["per_class"]["similarity"][2][2] is None
    again = embedeval.EvaluationReport.from_proto(msg)
    assert again == r and again.per_class == p
    other = embedeval.EvaluationReport.from_proto(evaluation_pb2.EvaluationReport(
        id="e1", status=evaluation_pb2.COMPLETED, per_class=_per_class_message(counts=[4, 5, 2])))
    assert other != r and other.per_class != p and p != "not a PerClass"


def test_per_class_skipped_parts_are_empty():
    p = embedeval.PerClass.from_proto(
        _per_class_message(knn_top1=[], linear_top1=[], nearest_negative_classes=[], nearest_negative_k=0))
    assert p.knn_top1.shape == (0,) and p.linear_top1.shape == (0,) and p.nearest_negative_k == 0
    assert p.nearest_negative_classes.shape == (0, 0) and p.similarity.shape == (3, 3)
    empty = embedeval.PerClass()
    assert empty.classes == 0 and empty.similarity.shape == (0, 0) and empty == embedeval.PerClass.from_proto(
        evaluation_pb2.PerClass())


@pytest.mark.parametrize(
    "field, values",
    [("counts", [1, 2]), ("tolerance", [0.1]), ("knn_top1", [1.0]), ("similarity", [0.0] * 8),
     ("nearest_negative_classes", [1] * 4), ("names", ["three", "seven"])],
)
def test_per_class_of_the_wrong_length_is_refused(field, values):
    with pytest.raises(embedeval.Internal, match=field):
        embedeval.PerClass.from_proto(_per_class_message(**{field: values}))


def test_per_class_frame():
    pd = pytest.importorskip("pandas")
    p = embedeval.PerClass.from_proto(_per_class_message(linear_top1=[]))
    df = p.frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    assert list(df.columns) == ["label", "count", "tolerance", "knn_top1", "linear_top1", "map_at_r", "r_precision"]
    assert df["label"].tolist() == [3, 7, 11] and df["count"].tolist() == [4, 5, 1]
    assert df["knn_top1"].tolist() == [1.0, 0.8, 0.0] and df["linear_top1"].isna().all()
    assert df["tolerance"][1] == 0.25 and pd.isna(df["tolerance"][2])
    assert len(embedeval.PerClass().frame()) == 0


def test_per_class_names_round_trip():
    msg = _per_class_message(names=["three", "seven", "eleven"])
    p = embedeval.PerClass.from_proto(msg)
    assert p.names == ["three", "seven", "eleven"] and all(type(n) is str for n in p.names)
    assert dict(zip(p.labels.tolist(), p.names)) == {3: "three", 7: "seven", 11: "eleven"}
    # Unnamed (the dataset names no class): an empty list, also by default.
    assert embedeval.PerClass.from_proto(_per_class_message()).names == [] and embedeval.PerClass().names == []
    # Inside a report: JSON, equality and a second conversion keep them.
    r = embedeval.EvaluationReport.from_proto(evaluation_pb2.EvaluationReport(id="e1", per_class=msg))
    d = r.to_dict()
    import json
    json.dumps(d, allow_nan=False)
    assert d["per_class"]["names"] == ["three", "seven", "eleven"]
    assert embedeval.EvaluationReport.from_proto(evaluation_pb2.EvaluationReport(id="e1", per_class=msg)) == r
    renamed = embedeval.PerClass.from_proto(_per_class_message(names=["three", "seven", "twelve"]))
    assert renamed != p and embedeval.PerClass.from_proto(_per_class_message()) != p


def test_per_class_names_of_the_wrong_length_are_refused():
    for names in (["three"], ["three", "seven", "eleven", "fifteen"]):
        with pytest.raises(embedeval.Internal, match=rf"PerClass\.names holds {len(names)} values for 3 classes"):
            embedeval.PerClass.from_proto(_per_class_message(names=names))
    # No classes, no names: fine; names without classes: refused.
    assert embedeval.PerClass.from_proto(evaluation_pb2.PerClass()).names == []
    with pytest.raises(embedeval.Internal, match="names"):
        embedeval.PerClass.from_proto(evaluation_pb2.PerClass(names=["a"]))


def test_per_class_frame_has_the_name_column():
    pytest.importorskip("pandas")
    p = embedeval.PerClass.from_proto(_per_class_message(names=["three", "seven", "eleven"]))
    df = p.frame()
    assert list(df.columns) == ["label", "name", "count", "tolerance", "knn_top1", "linear_top1", "map_at_r",
                                "r_precision"]
    assert df["name"].tolist() == ["three", "seven", "eleven"] and df["label"].tolist() == [3, 7, 11]
    assert df.set_index("name").loc["seven", "count"] == 5
    # Unnamed: no name column (test_per_class_frame).
    assert "name" not in embedeval.PerClass.from_proto(_per_class_message()).frame().columns


def test_dataset_info_class_names():
    msg = dataset_pb2.DatasetInfo(name="pets", format="image-folder", num_classes=3,
                                  class_names=["cat", "dog", "fox"])
    info = embedeval.DatasetInfo.from_proto(msg)
    assert info.class_names == ["cat", "dog", "fox"] and info.to_dict()["class_names"] == ["cat", "dog", "fox"]
    assert info == embedeval.DatasetInfo.from_proto(msg)
    assert embedeval.DatasetInfo.from_proto(dataset_pb2.DatasetInfo(name="digits")).class_names == []
    assert embedeval.DatasetInfo().class_names == []


class _FakeDatasets:
    """Takes RegisterDataset uploads: the last one's files by path, its manifest parsed."""

    def __init__(self):
        self.files = {}
        self.uploads = 0

    def RegisterDataset(self, requests, timeout=None, metadata=None):
        self.uploads += 1
        self.files = {}
        header = None
        for r in requests:
            if r.HasField("header"):
                header = r.header
            else:
                self.files[r.file.path] = self.files.get(r.file.path, b"") + r.file.data
        m = self.manifest()
        return dataset_pb2.DatasetInfo(name=header.name, format=m["format"], num_classes=m["num_classes"],
                                       class_names=m.get("class_names", []))

    def manifest(self):
        return _toml.loads(self.files["dataset.toml"].decode("utf-8"))


def _arrays(labels):
    return np.zeros((len(labels), 4, 4, 1), np.uint8), np.asarray(labels)


def test_register_arrays_writes_class_names_in_the_manifest():
    fake = _FakeDatasets()
    names = ["zéro", 'one "1"', "two"]
    with embedeval.Client("127.0.0.1:1") as c:
        c._datasets = fake
        info = c.register_arrays("x", {"train": _arrays([0, 1, 2]), "test": _arrays([0, 2])}, class_names=names)
        assert fake.manifest()["class_names"] == names and fake.manifest()["num_classes"] == 3
        assert info.class_names == names
        # num_classes defaults to the number of names (more than the labels seen).
        c.register_arrays("x", {"test": _arrays([0, 1])}, class_names=("a", "b", "c", "d"))
        assert fake.manifest()["num_classes"] == 4 and fake.manifest()["class_names"] == ["a", "b", "c", "d"]
        c.register_arrays("x", {"test": _arrays([0, 1])}, num_classes=2, class_names=np.array(["a", "b"]))
        assert fake.manifest()["class_names"] == ["a", "b"]
        # Without names: no class_names key.
        c.register_arrays("x", {"test": _arrays([0, 1])})
        assert "class_names" not in fake.manifest() and fake.manifest()["num_classes"] == 2


def test_register_arrays_checks_class_names():
    fake = _FakeDatasets()
    with embedeval.Client("127.0.0.1:1") as c:
        c._datasets = fake
        split = {"test": _arrays([0, 1, 2])}
        with pytest.raises(ValueError, match="class_names has 2 names but num_classes is 3"):
            c.register_arrays("x", split, num_classes=3, class_names=["a", "b"])
        with pytest.raises(ValueError, match="label 2 has no name: class_names has 2"):
            c.register_arrays("x", split, class_names=["a", "b"])  # num_classes from the names
        with pytest.raises(ValueError, match="class_names has 4 names but num_classes is 3"):
            c.register_arrays("x", split, num_classes=3, class_names=["a", "b", "c", "d"])
        with pytest.raises(ValueError, match="label 2 has no name"):
            c.register_arrays("x", split, num_classes=2, class_names=["a", "b"])
        with pytest.raises(ValueError, match="empty"):
            c.register_arrays("x", split, class_names=[])
        with pytest.raises(TypeError, match="class_names"):
            c.register_arrays("x", split, class_names="abc")
        with pytest.raises(TypeError, match="class_names"):
            c.register_arrays("x", split, class_names=["a", 1, "c"])
    assert fake.uploads == 0, "refused before any upload"


def test_per_class_frame_without_pandas_names_it(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match="pandas"):
        embedeval.PerClass.from_proto(_per_class_message()).frame()


def test_skip_per_class_in_the_spec():
    assert spec_to_proto({"skip_per_class": True}).skip_per_class
    assert spec_to_proto(MetricSpec(skip_per_class=True, skip_knn=True)).skip_per_class
    assert not spec_to_proto(MetricSpec(knn_k=20)).skip_per_class
    echoed = embedeval.EvaluationReport.from_proto(
        evaluation_pb2.EvaluationReport(spec=evaluation_pb2.MetricSpec(skip_per_class=True)))
    assert echoed.spec.skip_per_class is True and echoed.per_class is None
    fake = _FakeEvaluation()
    with embedeval.Client("127.0.0.1:1") as c:
        c._evaluation = fake
        r = c.evaluate("m", "digits", spec={"skip_per_class": True}, progress=False)
        assert fake.sent[-1].spec.skip_per_class and r.spec.skip_per_class
        c.compare(["m"], dataset="digits", spec=MetricSpec(skip_per_class=True), augmentation="none", progress=False)
        assert fake.sent[-1].spec.skip_per_class and fake.sent[-1].spec.augmentation.recipe == "none"


# -- recommendations -----------------------------------------------------------


def _recommendation_comparison():
    """Two losses: infonce (three taus, one FAILED row, one row without the
    probe) and simple (one row, kNN only)."""

    def row(id, model, loss, tau, status=evaluation_pb2.COMPLETED, knn=None, linear=None, **kwargs):
        r = evaluation_pb2.EvaluationReport(id=id, model=model, loss=loss, temperature=tau, status=status,
                                            num_test=100, **kwargs)
        if knn is not None:
            r.knn.top1 = knn
        if linear is not None:
            r.linear.top1 = linear
        return r

    rows = [
        # Out of tau order on purpose: frame() orders the loss's rows by tau.
        row("e3", "i-t1", "infonce", 1.0, uniformity=2.0, tolerance=0.7, knn=0.5, linear=0.55),
        row("e1", "i-t0.1", "infonce", 0.1, uniformity=3.8, tolerance=0.2, knn=0.8, linear=0.83),
        row("e2", "i-t0.5", "infonce", 0.5, uniformity=3.0, tolerance=0.5, knn=0.75),
        row("e4", "i-t0.2", "infonce", 0.2, status=evaluation_pb2.FAILED, error="boom"),
        row("e5", "s", "simple", 0.0, uniformity=3.1, tolerance=0.4, knn=0.9),
    ]
    interval = evaluation_pb2.AccuracyInterval
    recommendations = [
        evaluation_pb2.Recommendation(
            loss="infonce", front=["i-t1", "i-t0.5", "i-t0.1"], knee="i-t0.5",
            best_knn=interval(model="i-t0.1", temperature=0.1, top1=0.8, lo=0.71, hi=0.87),
            best_linear=interval(model="i-t0.1", temperature=0.1, top1=0.83, lo=0.74, hi=0.89),
            tied=["i-t0.1"], recommended="i-t0.1", recommended_temperature=0.1,
            reason="τ = 0.1: best linear top-1 0.830 [0.744, 0.891], and no other model's 95% interval reaches it"),
        evaluation_pb2.Recommendation(
            loss="simple", front=["s"], knee="s",
            best_knn=interval(model="s", temperature=0.0, top1=0.9, lo=0.83, hi=0.94),
            tied=["s"], recommended="s", recommended_temperature=0.0, reason="τ = 0: best kNN top-1 0.900"),
    ]
    return evaluation_pb2.Comparison(id="c1", rows=rows, recommendations=recommendations)


def test_recommendations_convert():
    comp = embedeval.Comparison.from_proto(_recommendation_comparison())
    assert [r.loss for r in comp.recommendations] == ["infonce", "simple"]
    rec = comp.recommendations[0]
    assert isinstance(rec, embedeval.Recommendation) and isinstance(rec.best_linear, embedeval.AccuracyInterval)
    assert rec.front == ["i-t1", "i-t0.5", "i-t0.1"] and rec.knee == "i-t0.5" and rec.tied == ["i-t0.1"]
    assert (rec.recommended, rec.recommended_temperature) == ("i-t0.1", 0.1) and rec.reason.startswith("τ = 0.1:")
    assert (rec.best_linear.model, rec.best_linear.temperature, rec.best_linear.top1) == ("i-t0.1", 0.1, 0.83)
    assert (rec.best_linear.lo, rec.best_linear.hi) == (0.74, 0.89) and rec.best_knn.top1 == 0.8
    simple = comp.recommendations[1]
    assert simple.best_linear is None and simple.best_knn.model == "s"  # unset: None
    # As plain JSON.
    import json
    d = comp.to_dict()
    json.dumps(d, ensure_ascii=False)
    assert d["recommendations"][0]["best_linear"] == {"model": "i-t0.1", "temperature": 0.1, "top1": 0.83,
                                                      "lo": 0.74, "hi": 0.89}
    assert d["recommendations"][1]["best_linear"] is None and "_rows" not in d["recommendations"][0]
    assert embedeval.Comparison.from_proto(_recommendation_comparison()) == comp
    # A server older than recommendations: none.
    assert embedeval.Comparison.from_proto(evaluation_pb2.Comparison(id="c2")).recommendations == []


def test_recommend_picks_a_loss():
    comp = embedeval.Comparison.from_proto(_recommendation_comparison())
    assert comp.recommend("simple") is comp.recommendations[1]
    assert comp.recommend(loss="infonce").recommended == "i-t0.1"
    with pytest.raises(ValueError) as e:
        comp.recommend()  # two losses: which one?
    assert "infonce, simple" in str(e.value) and "loss=" in str(e.value)
    with pytest.raises(ValueError) as e:
        comp.recommend("hard_infonce")
    assert "'hard_infonce'" in str(e.value) and "infonce, simple" in str(e.value)
    one = embedeval.Comparison.from_proto(evaluation_pb2.Comparison(
        id="c3", recommendations=[_recommendation_comparison().recommendations[1]]))
    assert one.recommend() is one.recommendations[0] and one.recommend().loss == "simple"
    none = embedeval.Comparison.from_proto(evaluation_pb2.Comparison(id="c4"))
    for loss in (None, "infonce"):
        with pytest.raises(ValueError, match="no recommendation"):
            none.recommend(loss)


def test_wilson_interval_matches_the_textbook():
    from embedeval.types import _wilson95
    # Wilson (1927) at 95%: 50/100 -> [0.4038, 0.5962]; 0/n -> [0, z^2 / (n + z^2)].
    assert _wilson95(0.5, 100) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    z2 = 1.959963984540054 ** 2
    assert _wilson95(0.0, 10) == pytest.approx((0.0, z2 / (10 + z2)), abs=1e-15)
    assert _wilson95(1.0, 10) == pytest.approx((10 / (10 + z2), 1.0), abs=1e-15)
    assert _wilson95(0.5, 0) == (0.0, 1.0)


def test_recommendation_frame():
    pd = pytest.importorskip("pandas")
    from embedeval.types import _wilson95
    comp = embedeval.Comparison.from_proto(_recommendation_comparison())
    df = comp.recommend("infonce").frame()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["model", "temperature", "uniformity", "tolerance", "knn_top1", "knn_lo", "knn_hi",
                                "linear_top1", "linear_lo", "linear_hi", "on_front", "knee", "tied", "recommended"]
    # The loss's COMPLETED rows (not the FAILED one, not the other loss's), by increasing tau.
    assert df["model"].tolist() == ["i-t0.1", "i-t0.5", "i-t1"] and df["temperature"].tolist() == [0.1, 0.5, 1.0]
    assert df["uniformity"].tolist() == [3.8, 3.0, 2.0] and df["tolerance"].tolist() == [0.2, 0.5, 0.7]
    assert df["knn_top1"].tolist() == [0.8, 0.75, 0.5]
    for i, top1 in enumerate([0.8, 0.75, 0.5]):
        assert (df["knn_lo"][i], df["knn_hi"][i]) == _wilson95(top1, 100)
    assert df["linear_top1"][0] == 0.83 and (df["linear_lo"][0], df["linear_hi"][0]) == _wilson95(0.83, 100)
    assert df.loc[1, ["linear_top1", "linear_lo", "linear_hi"]].isna().all()  # the probe was skipped
    assert df["on_front"].tolist() == [True, True, True] and df["knee"].tolist() == [False, True, False]
    assert df["tied"].tolist() == [True, False, False] and df["recommended"].tolist() == [True, False, False]
    assert df["on_front"].dtype == bool and df["recommended"].dtype == bool
    simple = comp.recommend("simple").frame()
    assert simple["model"].tolist() == ["s"] and simple["linear_top1"].isna().all() and simple["recommended"][0]
    # Given the rows explicitly (a recommendation on its own does not know them).
    alone = embedeval.Recommendation.from_proto(_recommendation_comparison().recommendations[0])
    with pytest.raises(ValueError, match="rows"):
        alone.frame()
    assert alone.frame(rows=comp.rows).equals(df)
    empty = embedeval.Recommendation(loss="infonce").frame(rows=[])
    assert len(empty) == 0 and list(empty.columns) == list(df.columns)


def test_recommendation_frame_without_pandas_names_it(monkeypatch):
    import sys
    comp = embedeval.Comparison.from_proto(_recommendation_comparison())
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match="pandas"):
        comp.recommend("infonce").frame()


def test_compare_and_get_comparison_carry_the_recommendations():
    class Fake(_FakeEvaluation):
        def Compare(self, request, timeout=None, metadata=None):
            self.sent.append(request)
            return _FakeCall([evaluation_pb2.CompareEvent(comparison=_recommendation_comparison())])

        def GetComparison(self, request, timeout=None, metadata=None):
            self.sent.append(request)
            return _recommendation_comparison()

    pytest.importorskip("pandas")
    with embedeval.Client("127.0.0.1:1") as c:
        c._evaluation = Fake()
        for comp in (c.compare(dataset="digits", progress=False), c.get_comparison("c1")):
            assert [r.loss for r in comp.recommendations] == ["infonce", "simple"]
            assert comp.recommend("infonce").recommended == "i-t0.1"
            assert comp.recommend("infonce").frame()["model"].tolist() == ["i-t0.1", "i-t0.5", "i-t1"]


# -- tags and groups ---------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        ("crop+flip", "crop+flip"), (0.2, "0.2"), (1.0, "1"), (0.0, "0"), (-0.5, "-0.5"), (300, "300"),
        (np.int64(3), "3"), (np.float64(0.07), "0.07"), (True, "true"), (False, "false"), (np.bool_(True), "true"),
        (1e-7, "0.0000001"), (1e20, "100000000000000000000"),
        (float("nan"), "NaN"), (float("inf"), "inf"), (float("-inf"), "-inf"),
    ],
)
def test_tag_text_is_the_servers(value, text):
    # As the server writes a card value as a tag (Rust's "{}" for f64: shortest, no exponent, no ".0").
    assert _toml.tag_text(value) == text


def test_tags_are_checked_locally():
    assert _toml.check_tags(None) == {}
    assert _toml.check_tags({"seed": 1, "temperature": 0.2, "a.b_c-D": "x y"}) == {
        "seed": "1", "temperature": "0.2", "a.b_c-D": "x y"}
    for bad in ({"": "x"}, {"a b": "x"}, {"k" * 65: "x"}, {"é": "x"}, {"k": "a\nb"}, {"k": "v" * 1025},
                {f"k{i}": "v" for i in range(65)}):
        with pytest.raises(ValueError, match="tag"):
            _toml.check_tags(bad)
    for bad in (["seed=1"], "seed=1", {1: "x"}, {"k": None}, {"k": [1]}):
        with pytest.raises(TypeError):
            _toml.check_tags(bad)
    assert _toml.check_tags({"k" * 64: "v" * 1024})  # the limits themselves are fine


def test_card_tags_set_a_training_key_of_its_type_else_the_tags_table():
    card = ('description = "d"\n[training]\nloss = "infonce"\ntemperature = 0.2\nseed = 0\nepochs = 300\n'
            'architecture = "cnn"\nnormalized = true\nfinal_loss = 2.1\n[input]\nscale = 0.0625\n')
    text = _toml.build_card(card, tags={"seed": "1", "temperature": "0.5", "architecture": "resnet",
                                        "normalized": "false", "augmentation": "crop+flip", "batch": 512})
    table = _toml.loads(text)
    assert table["training"] == {"loss": "infonce", "temperature": 0.5, "seed": 1, "epochs": 300,
                                 "architecture": "resnet", "normalized": False, "final_loss": 2.1}
    assert isinstance(table["training"]["seed"], int) and isinstance(table["training"]["temperature"], float)
    # Keys the card's [training] does not have go into [tags], as text.
    assert table["tags"] == {"augmentation": "crop+flip", "batch": "512"}
    assert table["description"] == "d" and table["input"] == {"scale": 0.0625}
    # A float key takes an integer text as a float (temperature = 1.0), an integer key a number: "+2".
    built = _toml.build_card(card, tags={"temperature": "1", "seed": "+2"})
    assert _toml.loads(built)["training"]["temperature"] == 1.0
    assert _toml.loads(_toml.build_card(card, tags={"seed": 7}))["training"]["seed"] == 7
    # Over a [tags] table the card has, next to its keys.
    with_tags = card + '[tags]\nsweep = "a"\nother = "b"\n'
    assert _toml.loads(_toml.build_card(with_tags, tags={"sweep": "z"}))["tags"] == {"sweep": "z", "other": "b"}
    # The flags first, then the tags: a temperature= flag is a [training] key the tag then sets.
    flags = _toml.loads(_toml.build_card(loss="infonce", temperature=0.2, tags={"temperature": "0.3", "seed": "4"}))
    assert flags["training"] == {"loss": "infonce", "temperature": 0.3} and flags["tags"] == {"seed": "4"}
    # Values that do not parse as the card's type: refused, naming the key.
    for tags in ({"seed": "x"}, {"seed": "1.5"}, {"seed": "1_0"}, {"temperature": "warm"},
                 {"normalized": "yes"}, {"epochs": str(2**63)}):
        with pytest.raises(ValueError, match=next(iter(tags))):
            _toml.build_card(card, tags=tags)
    with pytest.raises(ValueError, match="tag key"):
        _toml.build_card(card, tags={"bad key": "1"})
    # No tags: the card text as it is.
    assert _toml.build_card(card, tags={}) == card and _toml.build_card(card, tags=None) == card


def test_register_model_sends_the_tags_in_the_card():
    sent = []

    class FakeModels:
        def RegisterModel(self, requests, timeout=None, metadata=None):
            sent.extend(requests)
            return model_pb2.ModelInfo(name="m", tags={"loss": "infonce", "seed": "2", "sweep": "s"})

    card = '[training]\nloss = "infonce"\ntemperature = 0.2\nseed = 0\n'
    with embedeval.Client("127.0.0.1:1") as c:
        c._models = FakeModels()
        info = c.register_model("m", b"onnx", card=card, tags={"seed": 2, "sweep": "s"})
        assert len(sent) == 2
        with pytest.raises(ValueError, match="seed"):
            c.register_model("m", b"onnx", card=card, tags={"seed": "two"})
        assert len(sent) == 2  # refused before the upload
    table = _toml.loads(sent[0].card.card_toml)
    assert table["training"] == {"loss": "infonce", "temperature": 0.2, "seed": 2} and table["tags"] == {"sweep": "s"}
    assert info.tags == {"loss": "infonce", "seed": "2", "sweep": "s"}


def test_list_models_evaluate_compare_and_get_comparison_send_tags_and_by():
    listed = []

    class FakeModels:
        def ListModels(self, request, timeout=None, metadata=None):
            listed.append(request)
            return model_pb2.ListModelsResponse(models=[model_pb2.ModelInfo(name="a", tags={"seed": "1"})])

    class Fake(_FakeEvaluation):
        def Evaluate(self, request, timeout=None, metadata=None):
            self.sent.append(request)
            report = evaluation_pb2.EvaluationReport(id="e1", model=request.model, status=evaluation_pb2.COMPLETED,
                                                     tags={"loss": "infonce", **request.tags})
            return _FakeCall([evaluation_pb2.EvaluateEvent(report=report)])

        def Compare(self, request, timeout=None, metadata=None):
            self.sent.append(request)
            if request.detach:
                accepted = evaluation_pb2.Accepted(evaluation_ids=["e1"], status=evaluation_pb2.QUEUED,
                                                   comparison_id="c1")
                return _FakeCall([evaluation_pb2.CompareEvent(accepted=accepted)])
            return _FakeCall([evaluation_pb2.CompareEvent(comparison=_group_comparison(request.by))])

        def GetComparison(self, request, timeout=None, metadata=None):
            self.sent.append(request)
            return _group_comparison(request.by)

        def WatchEvaluation(self, request, timeout=None, metadata=None):
            report = evaluation_pb2.EvaluationReport(id=request.id, status=evaluation_pb2.COMPLETED)
            return _FakeCall([evaluation_pb2.EvaluateEvent(report=report)])

    fake = Fake()
    with embedeval.Client("127.0.0.1:1") as c:
        c._models, c._evaluation = FakeModels(), fake
        models = c.list_models(tags={"loss": "infonce", "temperature": 0.2})
        assert dict(listed[-1].tags) == {"loss": "infonce", "temperature": "0.2"}
        assert models[0].tags == {"seed": "1"}
        c.list_models()
        assert dict(listed[-1].tags) == {}

        r = c.evaluate("m", "digits", tags={"sweep": "x", "seed": 3}, progress=False)
        assert dict(fake.sent[-1].tags) == {"sweep": "x", "seed": "3"}
        assert r.tags == {"loss": "infonce", "sweep": "x", "seed": "3"}
        c.evaluate("m", "digits", progress=False)
        assert dict(fake.sent[-1].tags) == {}

        comp = c.compare(["a", "b"], dataset="digits", tags={"loss": "infonce"}, by="seed", progress=False)
        assert dict(fake.sent[-1].tags) == {"loss": "infonce"} and fake.sent[-1].by == "seed"
        assert comp.by == "seed" and len(comp.groups) == 2
        comp = c.get_comparison("c1", by="seed")
        assert fake.sent[-1].id == "c1" and fake.sent[-1].by == "seed" and comp.groups[0].models == ["a-s0", "a-s1"]
        assert c.get_comparison("c1").groups == [] and fake.sent[-1].by == ""
        # A detached comparison's handle asks for its groups when it waits.
        handle = c.compare(dataset="digits", by="seed", detach=True)
        assert handle.by == "seed"
        assert handle.wait().by == "seed" and fake.sent[-1].by == "seed"

        count = len(fake.sent)
        with pytest.raises(ValueError, match="tag"):
            c.evaluate("m", "digits", tags={"a b": "x"})
        with pytest.raises(ValueError, match="tag"):
            c.compare(dataset="digits", tags={"k": "a\x00"})
        with pytest.raises(TypeError, match="by"):
            c.compare(dataset="digits", by=["seed"])
        with pytest.raises(TypeError, match="by"):
            c.get_comparison("c1", by=None)
        assert len(fake.sent) == count


def _group_comparison(by="seed"):
    """Rows of two settings (a, b) over seeds, and their groups along `by`
    as the server gives them (one FAILED row, counted in no metric)."""

    def row(model, tau, seed, status=evaluation_pb2.COMPLETED, **kwargs):
        return evaluation_pb2.EvaluationReport(
            id=f"e-{model}", model=model, loss="infonce", temperature=float(tau), status=status,
            tags={"loss": "infonce", "temperature": tau, "seed": seed, "dataset": "digits"}, **kwargs)

    rows = [
        row("a-s0", "0.2", "0", uniformity=3.0, knn=evaluation_pb2.KnnResult(top1=0.9)),
        row("a-s1", "0.2", "1", uniformity=3.2, knn=evaluation_pb2.KnnResult(top1=0.92)),
        row("b-s0", "0.5", "0", uniformity=2.0, nearest_negative_similarity=[0.5, 0.4]),
        row("b-s1", "0.5", "1", status=evaluation_pb2.FAILED, error="boom"),
    ]
    comparison = evaluation_pb2.Comparison(id="c1", rows=rows)
    if by:
        summary = evaluation_pb2.MetricSummary
        comparison.by = by
        comparison.groups.extend([
            evaluation_pb2.TagGroup(
                tags={"loss": "infonce", "temperature": "0.2", "dataset": "digits"}, models=["a-s0", "a-s1"],
                values=["0", "1"],
                metrics=[summary(metric="uniformity", n=2, mean=3.1, std=0.1414213562373093, interval=1.2706),
                         summary(metric="knn_top1", n=2, mean=0.91, std=0.01414213562373093, interval=0.12706)]),
            evaluation_pb2.TagGroup(
                tags={"loss": "infonce", "temperature": "0.5", "dataset": "digits"}, models=["b-s0", "b-s1"],
                values=["0", "1"],
                metrics=[summary(metric="uniformity", n=1, mean=2.0),
                         summary(metric="nn1_similarity", n=1, mean=0.5)]),
        ])
    return comparison


def test_tags_and_groups_convert():
    info = embedeval.ModelInfo.from_proto(model_pb2.ModelInfo(name="m", tags={"seed": "1", "loss": "infonce"}))
    assert info.tags == {"seed": "1", "loss": "infonce"} and info.to_dict()["tags"] == {"seed": "1", "loss": "infonce"}
    assert embedeval.ModelInfo.from_proto(model_pb2.ModelInfo(name="m")).tags == {}
    comp = embedeval.Comparison.from_proto(_group_comparison())
    assert comp.rows[0].tags["seed"] == "0" and comp.by == "seed"
    a, b = comp.groups
    assert isinstance(a, embedeval.TagGroup) and isinstance(a.metrics[0], embedeval.MetricSummary)
    assert a.tags == {"loss": "infonce", "temperature": "0.2", "dataset": "digits"}
    assert (a.models, a.values) == (["a-s0", "a-s1"], ["0", "1"])
    knn = a.metric("knn_top1")
    assert (knn.n, knn.mean, knn.interval) == (2, 0.91, 0.12706)
    assert (knn.lo, knn.hi) == pytest.approx((0.91 - 0.12706, 0.91 + 0.12706))
    assert a.metric("linear_top1") is None and b.metric("knn_top1") is None
    with pytest.raises(ValueError, match="uniformity"):
        a.metric("accuracy")
    row = a.to_row("seed")
    assert row["loss"] == "infonce" and row["models"] == 2 and row["seed"] == "0,1"
    assert row["knn_top1_mean"] == 0.91 and row["knn_top1_n"] == 2 and np.isnan(row["linear_top1_mean"])
    assert row["linear_top1_n"] == 0
    assert a.to_row()["values"] == "0,1"
    import json
    d = comp.to_dict()
    json.dumps(d)
    assert d["by"] == "seed" and d["groups"][1]["metrics"][0] == {
        "metric": "uniformity", "n": 1, "mean": 2.0, "std": 0.0, "interval": 0.0}
    assert d["rows"][0]["tags"] == {"loss": "infonce", "temperature": "0.2", "seed": "0", "dataset": "digits"}
    assert embedeval.Comparison.from_proto(_group_comparison()) == comp
    # Without by: no groups.
    plain = embedeval.Comparison.from_proto(_group_comparison(by=""))
    assert plain.by == "" and plain.groups == []


def test_groups_to_pandas():
    pd = pytest.importorskip("pandas")
    from embedeval.types import GROUP_METRICS
    comp = embedeval.Comparison.from_proto(_group_comparison())
    frame = comp.groups_to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    metric_columns = [f"{m}_{p}" for m in GROUP_METRICS for p in ("mean", "std", "interval", "n")]
    # dataset is the same in every group: left out unless all_tags.
    assert list(frame.columns) == ["loss", "temperature", "models", "seed", *metric_columns]
    assert frame["temperature"].tolist() == ["0.2", "0.5"] and frame["seed"].tolist() == ["0,1", "0,1"]
    assert frame["models"].tolist() == [2, 2] and frame["uniformity_n"].tolist() == [2, 1]
    assert frame["uniformity_mean"].tolist() == [3.1, 2.0] and frame["knn_top1_interval"][0] == 0.12706
    assert np.isnan(frame["knn_top1_mean"][1]) and frame["knn_top1_n"][1] == 0
    assert frame["linear_top1_n"].dtype == np.int64
    full = comp.groups_to_pandas(all_tags=True)
    assert list(full.columns)[:5] == ["loss", "temperature", "dataset", "models", "seed"]
    empty = embedeval.Comparison.from_proto(_group_comparison(by="")).groups_to_pandas()
    assert len(empty) == 0 and list(empty.columns) == ["loss", "temperature", "models", "values", *metric_columns]
