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
