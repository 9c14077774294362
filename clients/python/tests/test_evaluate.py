"""EvaluationService: Evaluate (with progress, detached, watched, cancelled;
the augmentation of the positive views), EvaluateEmbeddings against numpy and
scikit-learn, Compare (and the models it leaves out), the stored reports (and
deleting them), stored comparisons and their figures (the accuracy figure
along a tag among them)."""
from __future__ import annotations

import datetime as dt
import json
import struct
import xml.etree.ElementTree as ET

import grpc
import numpy as np
import pytest

import embedeval
from conftest import REPO
from embedeval import EvaluationStatus

MODEL = "infonce-t0.5"
ONNX = REPO / "models" / MODEL / "model.onnx"
# Quick: kNN with a small k, the Wang & Liu metrics, no probe and no penalty profile.
FAST = {"skip_linear": True, "skip_penalty": True, "knn_k": 20}
# Sampled uniformity over 10^9 pairs: minutes of work, checked for a stop every 65,536 pairs.
LONG = {"uniformity_exact_max_rows": 0, "uniformity_samples": 10**9, "skip_linear": True}


def test_evaluate_with_progress(client):
    seen = []
    r = client.evaluate(MODEL, "digits", on_progress=seen.append)
    assert isinstance(r, embedeval.EvaluationReport) and r.ok and r.status is EvaluationStatus.COMPLETED
    assert r.model == MODEL and r.dataset == "digits" and r.loss == "infonce" and r.temperature == 0.5
    assert r.num_test == 540 and r.num_train == 1257 and r.embedding_dim == 128
    assert r.test_split == "test" and r.train_split == "train"
    # The bundled zoo's figures (README: compare --all --dataset digits).
    assert r.uniformity == pytest.approx(3.3980, abs=6e-5) and r.uniformity_loss == -r.uniformity
    assert r.tolerance == pytest.approx(0.2945, abs=6e-5)
    assert r.knn.top1 == pytest.approx(0.9778, abs=6e-5) and r.knn.k == 200 and r.knn.metric == "cosine"
    assert r.linear.top1 == pytest.approx(0.9907, abs=6e-5) and r.linear.feature_output == "features"
    assert r.alignment is not None and r.positive_similarity is not None and r.effective_rank is not None
    assert len(r.nearest_negative_similarity) == 10 and len(r.relative_penalty) == 10
    assert r.spec.knn_k == 200 and r.spec.uniformity_t == 2.0 and r.spec.penalty_temperature == 0.5
    assert r.preprocessing.scale == 0.0625 and r.execution_provider
    assert isinstance(r.created_at, dt.datetime) and r.created_at.tzinfo is not None
    assert r.uniformity_estimator == "exact" and "total" in r.timings
    assert {h.name for h in r.histograms} >= {"positive", "negative_rank_1"}
    assert seen and all(isinstance(p, embedeval.Progress) for p in seen)
    assert {p.stage for p in seen} >= {"uniformity", "knn"} and all(p.evaluation_id == r.id for p in seen)
    d = r.to_dict()
    json.dumps(d)
    assert d["status"] == "COMPLETED" and d["knn"]["k"] == 200 and d["id"] == r.id
    # Stored: GetEvaluation and ListEvaluations give it back.
    again = client.get_evaluation(r.id)
    assert again.id == r.id and again.uniformity == r.uniformity
    assert r.id in [e.id for e in client.list_evaluations(model=MODEL, dataset="digits")]
    assert len(client.list_evaluations(limit=1)) == 1


def test_spec_as_a_dict_and_splits(client):
    spec = {"knn_k": 20, "knn_temperature": 0.07, "neighbors_k": 3, "skip_linear": True, "skip_alignment": True}
    r = client.evaluate(MODEL, "digits", spec=spec, test_split="test", train_split="train", progress=False)
    assert r.ok and r.knn.k == 20 and r.knn.temperature == 0.07 and r.linear is None and r.alignment is None
    assert len(r.nearest_negative_similarity) == 3
    assert r.spec.skip_linear and r.spec.neighbors_k == 3
    r2 = client.evaluate(MODEL, "digits", spec=embedeval.MetricSpec(knn_k=20, knn_temperature=0.07, neighbors_k=3,
                                                                     skip_linear=True, skip_alignment=True))
    assert r2.knn.top1 == r.knn.top1


def test_evaluate_errors(client):
    with pytest.raises(embedeval.NotFound):
        client.evaluate("no-such-model", "digits")
    with pytest.raises(embedeval.NotFound):
        client.evaluate(MODEL, "no-such-dataset")
    with pytest.raises(embedeval.InvalidArgument) as e:
        client.evaluate(MODEL, "digits", spec={"knn_k": 0})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "knn_k" in e.value.message
    with pytest.raises(embedeval.InvalidArgument) as e:
        client.evaluate(MODEL, "digits", spec={"knn_k": 10001})
    assert "10000" in e.value.message
    with pytest.raises(embedeval.InvalidArgument):
        client.evaluate(MODEL, "digits", test_split="no-such-split")
    with pytest.raises(embedeval.NotFound):
        client.get_evaluation("no-such-evaluation")
    with pytest.raises(embedeval.NotFound):
        client.cancel_evaluation("no-such-evaluation")
    with pytest.raises(embedeval.NotFound):
        list(client.watch_evaluation("no-such-evaluation"))


def test_detach_watch_wait(client):
    handle = client.evaluate(MODEL, "digits", spec={"skip_linear": True}, detach=True)
    assert isinstance(handle, embedeval.EvaluationHandle) and len(handle.ids) == 1
    assert handle.status in (EvaluationStatus.QUEUED, EvaluationStatus.RUNNING)
    events = list(handle.watch())
    assert isinstance(events[-1], embedeval.EvaluationReport)
    assert all(isinstance(e, embedeval.Progress) for e in events[:-1])
    report = handle.wait()
    assert report.id == handle.id and report.ok and report == events[-1]
    assert handle.get().ok
    assert handle.cancel() is EvaluationStatus.COMPLETED  # it has ended: cancelling changes nothing


def test_cancel_a_detached_evaluation(client):
    handle = client.evaluate("infonce-t0.2", "digits", spec=LONG, detach=True)
    status = handle.cancel()
    report = handle.wait()
    assert report.status.ended
    assert status is EvaluationStatus.CANCELLED and report.status is EvaluationStatus.CANCELLED
    assert report.error
    with pytest.raises(embedeval.EvaluationFailed) as e:
        report.raise_for_status()
    assert e.value.report.id == handle.id


def test_deadline_exceeded(server):
    with server.client(timeout=1.0) as c:
        with pytest.raises(embedeval.DeadlineExceeded) as e:
            c.evaluate("infonce-t0.3", "digits", spec=LONG, progress=False)
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_client_going_away_cancels(server, client):
    """Leaving a non-detached evaluation (here: after its first event) stops it."""
    events = client._stream(client._evaluation.Evaluate, embedeval.client.evaluation_pb2.EvaluateRequest(
        model="infonce-t0.7", dataset="digits", spec=embedeval.types.spec_to_proto(LONG)))
    first = next(events)
    ev_id = first.progress.evaluation_id
    events.close()
    report = client.wait_evaluation(ev_id)
    assert report.status is EvaluationStatus.CANCELLED


def _normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def random_embeddings():
    rng = np.random.default_rng(7)
    d, classes = 32, 5
    centres = rng.normal(size=(classes, d))
    train_y = rng.integers(0, classes, 600)
    test_y = rng.integers(0, classes, 300)
    train = (centres[train_y] + 1.5 * rng.normal(size=(600, d))).astype(np.float32)
    test = (centres[test_y] + 1.5 * rng.normal(size=(300, d))).astype(np.float32)
    positive = (test + 0.3 * rng.normal(size=test.shape)).astype(np.float32)
    return train, train_y, test, test_y, positive


def test_evaluate_embeddings_agrees_with_numpy(client, random_embeddings):
    train, train_y, test, test_y, positive = random_embeddings
    r = client.evaluate_embeddings(train=(train, train_y), test=(test, test_y), test_positive=positive,
                                   name="py-random", loss="infonce", temperature=0.5, dataset="random")
    assert r.ok and r.model == "py-random" and r.loss == "infonce" and r.temperature == 0.5
    assert r.dataset == "random" and r.num_test == 300 and r.num_train == 600 and r.embedding_dim == 32
    assert r.preprocessing is None and r.execution_provider == ""

    z = _normalise(test.astype(np.float64))
    n = len(z)
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    iu = np.triu_indices(n, 1)
    uniformity_loss = np.log(np.mean(np.exp(-2.0 * sq[iu])))
    assert r.uniformity_loss == pytest.approx(uniformity_loss, abs=1e-6)
    assert r.uniformity == pytest.approx(-uniformity_loss, abs=1e-6)

    sims = z @ z.T
    same = (test_y[:, None] == test_y[None, :]) & ~np.eye(n, dtype=bool)
    assert r.tolerance == pytest.approx(sims[same].mean(), abs=1e-6)

    zp = _normalise(positive.astype(np.float64))
    assert r.alignment == pytest.approx(np.mean(np.sum((z - zp) ** 2, axis=1)), abs=1e-6)
    assert r.positive_similarity == pytest.approx(np.mean(np.sum(z * zp, axis=1)), abs=1e-6)

    others = sims.copy()
    np.fill_diagonal(others, -np.inf)
    nearest = -np.sort(-others, axis=1)[:, :10]
    np.testing.assert_allclose(r.nearest_negative_similarity, nearest.mean(0), rtol=0, atol=1e-6)

    # Weighted kNN, k = 200, T = 0.1, over the L2-normalised train bank (bench/baselines.py).
    bank = _normalise(train.astype(np.float64))
    s = z @ bank.T
    top = np.argsort(-s, axis=1, kind="stable")[:, :200]
    w = np.exp(np.take_along_axis(s, top, 1) / 0.1)
    lab = train_y[top]
    votes = np.stack([(w * (lab == c)).sum(1) for c in range(5)], 1)
    ranked = np.argsort(-votes, axis=1, kind="stable")
    assert r.knn.k == 200 and r.knn.temperature == 0.1
    assert r.knn.top1 == pytest.approx((ranked[:, 0] == test_y).mean(), abs=1e-6)
    assert r.knn.top5 == pytest.approx((ranked[:, :5] == test_y[:, None]).any(1).mean(), abs=1e-6)

    # The linear probe against scikit-learn (standardised features, lbfgs, C = 1).
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(C=1.0, max_iter=1000, tol=1e-4).fit(scaler.transform(train), train_y)
    assert r.linear.top1 == pytest.approx(clf.score(scaler.transform(test), test_y), abs=1e-4)
    assert r.linear.train_top1 == pytest.approx(clf.score(scaler.transform(train), train_y), abs=1e-4)


def test_evaluate_embeddings_from_npy_files_streams_them(client, random_embeddings, tmp_path):
    train, train_y, test, test_y, positive = random_embeddings
    from_memory = client.evaluate_embeddings(train=(train, train_y), test=(test, test_y),
                                             test_positive=positive, spec={"skip_penalty": True})
    # float64 files, given by path: memory-mapped, converted chunk by chunk.
    paths = {}
    for name, a in [("train", train.astype(np.float64)), ("train_y", train_y), ("test", test),
                    ("test_y", test_y), ("positive", positive)]:
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], a)
    from_files = client.evaluate_embeddings(train=(paths["train"], paths["train_y"]),
                                            test=(str(paths["test"]), str(paths["test_y"])),
                                            test_positive=paths["positive"], spec={"skip_penalty": True})
    for field in ("uniformity", "tolerance", "alignment", "positive_similarity"):
        assert getattr(from_files, field) == pytest.approx(getattr(from_memory, field), abs=1e-12), field
    assert from_files.knn.top1 == from_memory.knn.top1 and from_files.linear.top1 == from_memory.linear.top1
    # An np.load(mmap_mode="r") array is used in place, not read into memory first.
    mapped = np.load(paths["train"], mmap_mode="r")
    assert embedeval.client._float_rows(mapped, "train") is mapped
    with pytest.raises(ValueError):
        client.evaluate_embeddings(test=(paths["train"], paths["test_y"]))  # 600 rows, 300 labels


def test_evaluate_embeddings_without_train_and_detached(client, random_embeddings):
    _, _, test, test_y, _ = random_embeddings
    r = client.evaluate_embeddings(test=(test, test_y), spec={"skip_penalty": True})
    assert r.ok and r.knn is None and r.linear is None and r.alignment is None and r.num_train == 0
    assert r.tolerance is not None and r.relative_penalty == []
    handle = client.evaluate_embeddings(test=(test, test_y), detach=True)
    assert isinstance(handle, embedeval.EvaluationHandle)
    assert handle.wait().uniformity == pytest.approx(r.uniformity, abs=1e-12)
    with pytest.raises(embedeval.InvalidArgument):
        client.evaluate_embeddings(test=(test, test_y), temperature=-1.0)


def test_compare_with_a_model_that_does_not_fit(client, resnet2048):
    seen = []
    comp = client.compare([MODEL, "infonce-t1", resnet2048], dataset="digits",
                          spec={"skip_linear": True, "skip_penalty": True}, on_progress=seen.append)
    # The model whose input does not take digits is left out, with why, and no report is stored for it.
    assert isinstance(comp, embedeval.Comparison) and len(comp.rows) == 2
    assert {row.model for row in comp.rows} == {MODEL, "infonce-t1"}
    (excluded,) = comp.excluded
    assert isinstance(excluded, embedeval.ExcludedModel)
    assert (excluded.model, excluded.kind, excluded.same_as) == (resnet2048, "does not fit", "") and excluded.reason
    with pytest.raises(KeyError):
        comp[resnet2048]
    assert client.list_evaluations(model=resnet2048, dataset="digits") == []
    assert comp[MODEL].ok and comp["infonce-t1"].ok and comp[MODEL].linear is None
    assert isinstance(comp.plot_svg, bytes) and b"<svg" in comp.plot_svg
    assert isinstance(comp.accuracy_plot_svg, bytes) and b"<svg" in comp.accuracy_plot_svg
    assert seen and max(p.models for p in seen) >= 2
    # Figures draw the COMPLETED rows only; a figure nothing here has data for is refused.
    assert comp.id
    ut = client.render_figure(comp.id, "ut")
    assert sorted(ut.evaluation_ids) == sorted([comp[MODEL].id, comp["infonce-t1"].id]) and ut.marks == 2
    with pytest.raises(embedeval.FailedPrecondition):
        client.render_figure(comp.id, "penalty")  # skip_penalty
    # Stored with its exclusions.
    assert [e.model for e in client.get_comparison(comp.id).excluded] == [resnet2048]
    json.dumps(comp.to_dict())
    pd = pytest.importorskip("pandas")
    frame = comp.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2 and "knn_top1" in frame.columns


def test_compare_leaves_out_a_duplicate(client):
    """A comparison of every model evaluates a model of the same ONNX file and
    preprocessing as another once, and names the one it left out (models
    named by the caller are taken as named)."""
    copy = "py-duplicate"
    card = "[training]\nloss = \"infonce\"\ntemperature = 0.5\n[input]\nscale = 0.0625\nmean = [0.0]\nstd = [1.0]\n"
    client.register_model(copy, ONNX, card=card)
    try:
        spec = dict(FAST, skip_linear=True, skip_penalty=True, skip_nearest_negatives=True)
        comp = client.compare(dataset="digits", spec=spec, progress=False)
        duplicates = [e for e in comp.excluded if e.kind == "duplicate"]
        (excluded,) = [e for e in duplicates if copy in (e.model, e.same_as)]
        assert excluded.reason and {excluded.model, excluded.same_as} == {MODEL, copy}
        evaluated = {r.model for r in comp.rows}
        assert excluded.same_as in evaluated and excluded.model not in evaluated
        named = client.compare([MODEL, copy], dataset="digits", spec=FAST, progress=False)
        assert len(named.rows) == 2 and not named.excluded
    finally:
        client.delete_model(copy)


def test_compare_every_model_detached(client):
    spec = {"skip_linear": True, "skip_penalty": True, "skip_alignment": True, "skip_nearest_negatives": True,
            "skip_effective_rank": True, "knn_k": 20}
    handle = client.compare(dataset="digits", spec=spec, detach=True)
    assert isinstance(handle, embedeval.ComparisonHandle) and len(handle.ids) >= 14
    assert handle.comparison_id and handle.comparison_id not in handle.ids
    comp = handle.wait()
    assert comp.id == handle.comparison_id and comp.plot_svg.startswith(b"<svg")
    assert len(comp.rows) == len(handle.ids) and sorted(row.id for row in comp.rows) == sorted(handle.ids)
    done = [row for row in comp.rows if row.ok]
    assert len(done) >= 14 and {row.model for row in done} >= {"simple", "hard-simple", MODEL}
    assert all(row.status.ended for row in comp.rows)


FIGURE_MODELS = ["infonce-t0.1", "infonce-t1", "simple"]
FIGURE_SIZES = {"screen": (1280, 860), "column": (1050, 840)}


def _svg_size(data: bytes):
    root = ET.fromstring(data)
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    return int(root.get("width")), int(root.get("height"))


def _svg_texts(data: bytes):
    """The text of every <text> element of an SVG, stripped."""
    return ["".join(e.itertext()).strip() for e in ET.fromstring(data).iter() if e.tag.rsplit("}", 1)[-1] == "text"]


def test_stored_comparison_and_its_figures(client, tmp_path):
    k = 5
    comp = client.compare(FIGURE_MODELS, dataset="digits", spec={"neighbors_k": k, "skip_linear": True},
                          progress=False)
    assert len(comp.rows) == len(FIGURE_MODELS) and all(row.ok for row in comp.rows)
    assert comp.id and comp.id not in [row.id for row in comp.rows]
    ids = sorted(row.id for row in comp.rows)

    # Stored: the same rows in the same order, the plots drawn again.
    again = client.get_comparison(comp.id)
    assert isinstance(again, embedeval.Comparison) and again.id == comp.id
    assert [row.id for row in again.rows] == [row.id for row in comp.rows]
    assert again.rows == comp.rows
    for plot in (comp.plot_svg, comp.accuracy_plot_svg, again.plot_svg, again.accuracy_plot_svg):
        assert plot.startswith(b"<svg") and _svg_size(plot) == FIGURE_SIZES["screen"]

    # Every kind in both formats and sizes; the marks counted: one per model,
    # per model and probe (kNN alone: skip_linear), per model and rank
    # (the positive, then k negatives), per model and negative.
    n = len(FIGURE_MODELS)
    marks = {"ut": n, "accuracy": n * 1, "negatives": n * (k + 1), "penalty": n * k}
    for kind, expected in marks.items():
        for size, dims in FIGURE_SIZES.items():
            png = client.render_figure(comp.id, kind, "png", size)
            assert isinstance(png, embedeval.Figure) and png.media_type == "image/png" and png.format == "png"
            assert png.data.startswith(b"\x89PNG\r\n\x1a\n") and png.data[12:16] == b"IHDR"
            assert (png.width, png.height) == dims and struct.unpack(">II", png.data[16:24]) == dims
            assert png.marks == expected, (kind, size)
            assert sorted(png.evaluation_ids) == ids
            svg = client.render_figure(comp.id, kind, "svg", size)
            assert svg.media_type == "image/svg+xml" and svg.format == "svg"
            assert _svg_size(svg.data) == dims and (svg.width, svg.height) == dims
            assert svg.marks == expected, (kind, size)
            assert sorted(svg.evaluation_ids) == ids
    # The defaults: the uniformity-tolerance plane, SVG, screen size.
    default = client.render_figure(comp.id)
    assert (default.media_type, default.width, default.height, default.marks) == ("image/svg+xml", 1280, 860, n)
    assert default.save(tmp_path / "ut.svg").read_bytes() == default.data
    assert client.render_figure(comp.id, "ut", "png").save(tmp_path / "ut.png").read_bytes().startswith(b"\x89PNG")

    # An evaluation id draws its one model.
    one = comp["infonce-t1"]
    f = client.render_figure(one.id, "penalty", "png", "column")
    assert f.evaluation_ids == [one.id] and f.marks == k and (f.width, f.height) == (1050, 840)
    f = client.render_figure(one.id, "ut")
    assert f.evaluation_ids == [one.id] and f.marks == 1

    # Errors: unknown ids are NOT_FOUND (an evaluation id is no comparison);
    # a name the client does not know is refused before any call.
    with pytest.raises(embedeval.NotFound):
        client.render_figure("no-such-id", "accuracy")
    with pytest.raises(embedeval.NotFound):
        client.get_comparison("no-such-comparison")
    with pytest.raises(embedeval.NotFound):
        client.get_comparison(one.id)
    for bad in ({"kind": "scatter"}, {"format": "jpg"}, {"size": "a4"}):
        with pytest.raises(ValueError) as e:
            client.render_figure(comp.id, **bad)
        assert not isinstance(e.value, embedeval.EmbedevalError), "refused by the client, not the server"


def test_accuracy_figure_along_a_tag(client):
    # The figure models' cards: seed 0 and 300 epochs each; tau 0.1, 1 and
    # none (simple: temperature 0).
    comp = client.compare(FIGURE_MODELS, dataset="digits", spec={"skip_linear": True, "knn_k": 20},
                          progress=False)
    assert all(row.ok for row in comp.rows)
    assert {row.tags["epochs"] for row in comp.rows} == {"300"}
    ids = sorted(row.id for row in comp.rows)
    n = len(FIGURE_MODELS)

    # Along epochs, one colour per tau: every model at x = 300, alone in
    # its colour (a mark of its own, no aggregate), one mark per model (kNN alone).
    f = client.render_figure(comp.id, "accuracy", x="epochs", group_by="temperature")
    texts = _svg_texts(f.data)
    assert "Accuracy against epochs" in texts and "Accuracy against τ" not in texts, texts
    assert "epochs" in texts and "temperature" in texts, texts  # the x axis and the legend's title
    assert {row.tags["temperature"] for row in comp.rows} <= set(texts), texts
    assert not any(t.startswith("Several models at one x") for t in texts), texts
    assert f.marks == n and sorted(f.evaluation_ids) == ids
    png = client.render_figure(comp.id, "accuracy", "png", "column", x="epochs", group_by="temperature")
    assert png.data.startswith(b"\x89PNG") and (png.width, png.height) == (1050, 840) and png.marks == n

    # Coloured by loss: the two infonce models at one x are their mean with
    # the t-interval, each still a (faint) mark of its own.
    f = client.render_figure(comp.id, "accuracy", x="epochs")
    texts = _svg_texts(f.data)
    assert "Accuracy against epochs" in texts and "loss" in texts, texts
    assert any(t.startswith("Several models at one x") for t in texts), texts
    assert f.marks == n and sorted(f.evaluation_ids) == ids

    # The defaults named are the defaults: the same figure as none given,
    # and every kind takes them.
    default = client.render_figure(comp.id, "accuracy")
    assert "Accuracy against τ" in _svg_texts(default.data)
    named = client.render_figure(comp.id, "accuracy", x="temperature", group_by="loss")
    assert (named.data, named.marks) == (default.data, default.marks)
    assert client.render_figure(comp.id, "ut", x="temperature", group_by="loss").marks == n

    # Other axes on another kind, and names that are no tag, are
    # INVALID_ARGUMENT; a tag that no model has a number for is
    # FAILED_PRECONDITION (nothing to draw).
    for kind, axes in (("negatives", {"x": "seed"}), ("ut", {"group_by": "seed"}),
                       ("accuracy", {"x": "a b"}), ("accuracy", {"group_by": "a b"})):
        with pytest.raises(embedeval.InvalidArgument):
            client.render_figure(comp.id, kind, **axes)
    for x in ("no-such-tag", "negatives"):  # absent; present but not a number
        with pytest.raises(embedeval.FailedPrecondition) as e:
            client.render_figure(comp.id, "accuracy", x=x)
        assert x in e.value.message
    with pytest.raises(TypeError):
        client.render_figure(comp.id, "accuracy", x=300)


def test_per_class_and_pareto_figures(client):
    # The default spec: per-class diagnostics, their nearest negatives and
    # the recommendations are all there.
    comp = client.compare(FIGURE_MODELS, dataset="digits", progress=False)
    assert len(comp.rows) == len(FIGURE_MODELS) and all(row.ok and row.per_class is not None for row in comp.rows)
    assert comp.recommendations
    ids = {row.id for row in comp.rows}
    # infonce is the largest sweep (tau = 0.1 and 1): its 10 classes at both
    # taus, its 10 x 10 confusion cells at both, and one point per model on
    # the uniformity-tolerance plane.
    marks = {"classes": 10 * 2, "confusion": 2 * 100, "pareto": len(FIGURE_MODELS)}
    for kind, expected in marks.items():
        for size, dims in FIGURE_SIZES.items():
            png = client.render_figure(comp.id, kind, "png", size)
            assert png.media_type == "image/png" and png.data.startswith(b"\x89PNG\r\n\x1a\n")
            assert (png.width, png.height) == dims and struct.unpack(">II", png.data[16:24]) == dims
            assert png.marks > 0 and png.marks == expected, (kind, size)
            assert png.evaluation_ids and set(png.evaluation_ids) <= ids
            svg = client.render_figure(comp.id, kind, "svg", size)
            assert svg.media_type == "image/svg+xml" and _svg_size(svg.data) == dims
            assert svg.marks > 0 and svg.marks == expected, (kind, size)
    # One evaluation: its classes, one confusion panel.
    one = comp["infonce-t1"]
    assert client.render_figure(one.id, "classes").marks == 10
    f = client.render_figure(one.id, "confusion")
    assert f.marks == 100 and f.evaluation_ids == [one.id]


def test_compare_errors(client):
    with pytest.raises(embedeval.NotFound):
        client.compare(["no-such-model"], dataset="digits")
    with pytest.raises(embedeval.NotFound):
        client.compare(dataset="no-such-dataset")


def test_augmentation_none_makes_each_view_its_image(client):
    r = client.evaluate(MODEL, "digits", spec=FAST, augmentation="none", progress=False)
    assert r.ok, r.error
    assert r.positive_similarity == pytest.approx(1.0, abs=1e-5)
    assert r.alignment == pytest.approx(0.0, abs=1e-5)
    assert isinstance(r.spec.augmentation, embedeval.Augmentation) and r.spec.augmentation.recipe == "none"
    # The same through the spec, as a dict or a dataclass.
    for spec in ({**FAST, "augmentation": {"recipe": "none"}},
                 embedeval.MetricSpec(skip_linear=True, skip_penalty=True, knn_k=20,
                                      augmentation=embedeval.Augmentation(recipe="none"))):
        again = client.evaluate(MODEL, "digits", spec=spec, progress=False)
        assert again.ok and again.spec.augmentation.recipe == "none"
        assert again.positive_similarity == pytest.approx(1.0, abs=1e-5)


def test_the_default_augmentation_is_echoed_filled_in(client):
    r = client.evaluate(MODEL, "digits", progress=False)
    assert r.ok, r.error
    aug = r.spec.augmentation
    # Digits get the zoo's training augmentation, but the recipe is still echoed as "simclr".
    assert isinstance(aug, embedeval.Augmentation) and aug.recipe == "simclr"
    assert aug.crop_scale_min == pytest.approx(0.2) and aug.crop_scale_max == pytest.approx(1.0)
    assert r.spec.positives_split == ""
    assert r.positive_similarity < 1.0 - 1e-5 and r.alignment > 1e-5
    # A bundled model's card gives its normalisation: nothing assumed.
    assert r.warnings == [] and r.loss_name == ""


def test_delete_evaluation(client):
    r = client.evaluate(MODEL, "digits", spec=FAST, progress=False)
    assert r.ok
    assert client.delete_evaluation(r.id) is None
    with pytest.raises(embedeval.NotFound):
        client.get_evaluation(r.id)
    assert r.id not in [e.id for e in client.list_evaluations(model=MODEL, dataset="digits")]
    with pytest.raises(embedeval.NotFound):
        client.delete_evaluation(r.id)
    with pytest.raises(embedeval.NotFound):
        client.delete_evaluation("no-such-evaluation")

    # One still queued or running: FAILED_PRECONDITION until it has ended.
    handle = client.evaluate("infonce-t0.2", "digits", spec=LONG, detach=True)
    try:
        with pytest.raises(embedeval.FailedPrecondition):
            client.delete_evaluation(handle.id)
    finally:
        handle.cancel()
    assert handle.wait().status is EvaluationStatus.CANCELLED
    client.delete_evaluation(handle.id)
    with pytest.raises(embedeval.NotFound):
        client.get_evaluation(handle.id)

    # A comparison that held a deleted report leaves it out from then on.
    comp = client.compare([MODEL, "infonce-t1"], dataset="digits", spec=FAST, progress=False)
    assert len(comp.rows) == 2
    client.delete_evaluation(comp["infonce-t1"].id)
    assert [row.id for row in client.get_comparison(comp.id).rows] == [comp[MODEL].id]


def test_compare_every_model_lists_the_excluded(client):
    comp = client.compare(dataset="digits", spec=FAST, progress=False)
    assert isinstance(comp.excluded, list)
    assert all(isinstance(e, embedeval.ExcludedModel) for e in comp.excluded)
    evaluated = {row.model for row in comp.rows}
    assert evaluated >= {"simple", "hard-simple", MODEL}
    for e in comp.excluded:
        assert e.kind in ("does not fit", "duplicate") and e.reason and e.model not in evaluated
        if e.kind == "duplicate":
            assert e.same_as in evaluated
    pytest.importorskip("pandas")
    frame = comp.to_pandas()
    assert {"temperature", "positive_similarity", "effective_rank"} <= set(frame.columns)
    assert len(frame) == len(comp.rows)


def test_comparisons_are_listed_and_removed(client):
    comparison = client.compare(["infonce-t0.1", "infonce-t0.5"], "digits",
                                {"skip_linear": True, "skip_per_class": True}, progress=False)
    listed = client.list_comparisons(dataset="digits")
    mine = [c for c in listed if c.id == comparison.id]
    assert len(mine) == 1, [c.id for c in listed]
    summary = mine[0]
    assert summary.models == ["infonce-t0.1", "infonce-t0.5"] and summary.num_evaluations == 2
    assert summary.dataset == "digits" and summary.dataset_ids == [client.get_dataset("digits").id[:12]]
    assert summary.created_at is not None
    client.delete_comparison(comparison.id)
    assert comparison.id not in [c.id for c in client.list_comparisons()]
    with pytest.raises(embedeval.NotFound):
        client.get_comparison(comparison.id)
    with pytest.raises(embedeval.NotFound):
        client.delete_comparison(comparison.id)
    # The evaluations stay.
    for row in comparison.rows:
        assert client.get_evaluation(row.id).id == row.id


def test_the_embedding_space_of_a_comparison(client):
    comp = client.compare(FIGURE_MODELS, dataset="digits", spec={"skip_linear": True}, progress=False)
    taus = sorted((r.temperature, r.model) for r in comp.rows if r.loss == "infonce")
    space = client.project(comp.id, seed=5)
    assert isinstance(space, embedeval.Projections) and space.method == "pca"
    assert [p.model for p in space.projections] == [taus[0][1], taus[-1][1]], "the smallest and largest tau"
    n = len(space.rows)
    assert n == 540 and space.labels.shape == (n,) and space.split == "test"
    # The embeddings the server projected are the model's on the unit sphere: scikit-learn's PCA of Embed's
    # (normalised) equals it, each axis signed alike.
    from sklearn.decomposition import PCA

    for p in space.projections:
        emb = client.embed(p.model, dataset="digits", split="test", normalize=True)
        pca = PCA(n_components=2, svd_solver="full").fit(emb[space.rows].astype(np.float64))
        assert p.coordinates.shape == (n, 2)
        np.testing.assert_allclose(p.coordinates, pca.transform(emb[space.rows].astype(np.float64)), atol=1e-4)
        np.testing.assert_allclose(p.explained_variance, pca.explained_variance_ratio_, rtol=1e-5)
    assert space.svg.startswith("<svg") and space.svg.count("<circle cx") == 2 * n + 10
    again = client.project(comp.id, seed=5)
    assert again.svg == space.svg and all(
        np.array_equal(a.coordinates, b.coordinates) for a, b in zip(again.projections, space.projections))
    tsne = client.project(models=[taus[0][1]], dataset="digits", method="tsne", max_rows=300)
    assert tsne.projections[0].coordinates.shape == (300, 2) and tsne.projections[0].kl_divergence is not None
    with pytest.raises(ValueError):
        client.project(comp.id, method="umap")
    with pytest.raises(embedeval.InvalidArgument):
        client.project(comp.id, max_rows=5001)


def test_the_nearest_images_of_a_test_image_equal_brute_force(client):
    comp = client.compare(FIGURE_MODELS, dataset="digits", spec={"skip_linear": True}, progress=False)
    near = client.nearest_images(comp.id, row=7, k=5)
    assert isinstance(near, embedeval.NearestImages) and [m.model for m in near.models] == [r.model for r in comp.rows]
    assert (near.test_split, near.train_split, near.row) == ("test", "train", 7)
    for m in near.models:
        test, test_labels = client.embed(m.model, dataset="digits", split="test", normalize=True, return_labels=True)
        bank, bank_labels = client.embed(m.model, dataset="digits", split="train", normalize=True, return_labels=True)
        assert near.label == test_labels[7]
        sims = bank.astype(np.float64) @ test[7].astype(np.float64)
        order = np.argsort(-sims, kind="stable")[:5]
        # The k most similar rows (two rows within float32 rounding of each other may come either way).
        got = np.array([n.row for n in m.neighbours])
        np.testing.assert_allclose(sims[got], sims[order], atol=1e-5)
        np.testing.assert_allclose([n.similarity for n in m.neighbours], sims[got], atol=1e-5)
        assert [n.label for n in m.neighbours] == bank_labels[got].tolist()
        # Each class's most confused class, from every test row's nearest training row.
        nearest = np.argmax(test.astype(np.float64) @ bank.astype(np.float64).T, axis=1)
        for c in m.confusions:
            own = test_labels == c.label
            wrong = bank_labels[nearest[own]]
            counts = np.bincount(wrong[wrong != c.label], minlength=10)
            assert c.confused_with == int(np.argmax(counts)) and c.rows == own.sum()
            assert c.share == pytest.approx(counts.max() / own.sum())
            for p in c.pairs:
                assert (test_labels[p.test_row], bank_labels[p.train_row]) == (c.label, c.confused_with)
        labels = np.unique(test_labels)
        confused = {int(lbl) for lbl in labels if (bank_labels[nearest[test_labels == lbl]] != lbl).any()}
        assert {c.label for c in m.confusions} == confused
    with pytest.raises(embedeval.InvalidArgument):
        client.nearest_images(comp.id, row=540)
