"""The per-class diagnostics of a real evaluation (``report.per_class``)
against an independent numpy computation from the same model's embeddings,
fetched through ``client.embed``: labels and counts, per-class tolerance and
the class-to-class similarity matrix (brute force over pairs), the classes of
the nearest negatives, the per-class weighted kNN (the vote reimplemented)
and the consistency of the per-class accuracies with the report's totals.

The reference works as the server does: the float32 rows are L2-normalised
in float32 (the norm in float64), then every sum is taken in float64."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import embedeval

MODEL = "infonce-t0.5"
DATASET = "digits"


@dataclass
class Evaluated:
    """A default-spec report and the embeddings its numbers come from."""

    report: embedeval.EvaluationReport
    #: L2-normalised test and train rows (float32 values, as float64) and their labels.
    test: np.ndarray
    test_labels: np.ndarray
    train: np.ndarray
    train_labels: np.ndarray


def _normalized(x: np.ndarray) -> np.ndarray:
    """Rows divided by their norm as the server does (norm and quotient in
    float64, rounded to float32), returned as float64 for exact sums."""
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    z = (x64 / np.sqrt((x64 * x64).sum(axis=1, keepdims=True))).astype(np.float32)
    return z.astype(np.float64)


@pytest.fixture(scope="module")
def evaluated(client) -> Evaluated:
    r = client.evaluate(MODEL, DATASET, progress=False).raise_for_status()
    assert r.ok and r.per_class is not None
    assert r.test_split and r.train_split and r.spec.skip_per_class is False
    # The embedding output (the kNN bank and the metrics use it; only the
    # probe uses the features) of the splits the report names.
    test, test_labels = client.embed(MODEL, dataset=DATASET, split=r.test_split, return_labels=True)
    train, train_labels = client.embed(MODEL, dataset=DATASET, split=r.train_split, return_labels=True)
    assert test.shape == (r.num_test, r.embedding_dim) and train.shape == (r.num_train, r.embedding_dim)
    return Evaluated(r, _normalized(test), test_labels, _normalized(train), train_labels)


def test_labels_and_counts(evaluated):
    p = evaluated.report.per_class
    labels, counts = np.unique(evaluated.test_labels, return_counts=True)
    assert p.labels.tolist() == labels.tolist()
    assert p.counts.tolist() == counts.tolist()
    assert p.classes == len(labels) and int(p.counts.sum()) == evaluated.report.num_test


def test_the_embeddings_are_the_evaluated_ones(evaluated):
    # Calibration: the overall tolerance (mean similarity of distinct
    # same-label pairs) from the fetched embeddings is the report's, so the
    # reference below sees the rows the server saw (to 1e-12: both take each
    # normalised row's own squared norm, 1 only to ~1e-7 in float32).
    z, y = evaluated.test, evaluated.test_labels
    same = (y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool)
    assert (z @ z.T)[same].mean() == pytest.approx(evaluated.report.tolerance, abs=1e-12)


def test_tolerance_and_similarity_matrix(evaluated):
    p = evaluated.report.per_class
    z, y = evaluated.test, evaluated.test_labels
    c = p.classes
    expected = np.empty((c, c))
    for a, la in enumerate(p.labels):
        for b, lb in enumerate(p.labels):
            rows_a, rows_b = z[y == la], z[y == lb]
            total, pairs = 0.0, 0
            for i, u in enumerate(rows_a):  # pair by pair: the definition
                sims = rows_b @ u
                if a == b:
                    sims = np.delete(sims, i)  # distinct pairs only
                total += sims.sum()
                pairs += len(sims)
            expected[a, b] = total / pairs if pairs else np.nan
    assert p.tolerance.shape == (c,) and p.similarity.shape == (c, c)
    np.testing.assert_allclose(p.tolerance, np.diag(expected), rtol=0, atol=1e-6)
    np.testing.assert_allclose(p.similarity, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.diag(p.similarity), p.tolerance.astype(np.float32))
    # Weighted by their pairs, the per-class tolerances average to the mean
    # over every distinct same-label pair.
    same = (y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool)
    pairs = p.counts * (p.counts - 1)
    assert float((pairs * p.tolerance).sum() / pairs.sum()) == pytest.approx((z @ z.T)[same].mean(), abs=1e-12)


def test_nearest_negative_classes(evaluated):
    p = evaluated.report.per_class
    k = p.nearest_negative_k
    assert k == evaluated.report.spec.neighbors_k and k == len(evaluated.report.nearest_negative_similarity)
    z, y = evaluated.test, evaluated.test_labels
    n = len(y)
    sims = z @ z.T
    np.fill_diagonal(sims, -np.inf)  # the row itself is not its own neighbour
    ids = np.arange(n)
    cls = np.searchsorted(p.labels, y)
    expected = np.zeros((p.classes, p.classes), dtype=np.int64)
    for i in range(n):
        nearest = np.lexsort((ids, -sims[i]))[:k]  # most similar first, ties to the smaller row
        np.add.at(expected[cls[i]], cls[nearest], 1)
    np.testing.assert_array_equal(p.nearest_negative_classes, expected)
    assert (p.nearest_negative_classes.sum(axis=1) == p.counts * k).all()


def test_knn_per_class(evaluated):
    r = evaluated.report
    p = r.per_class
    k, temperature = r.knn.k, r.knn.temperature
    assert k == r.spec.knn_k and temperature == r.spec.knn_temperature
    y, train_y = evaluated.test_labels, evaluated.train_labels
    classes = np.union1d(train_y, y)  # every label of the bank and the test rows
    bank_class = np.searchsorted(classes, train_y)
    ids = np.arange(len(train_y))
    sims = evaluated.test @ evaluated.train.T
    correct = np.empty(len(y), dtype=bool)
    for i, row in enumerate(sims):
        nearest = np.lexsort((ids, -row))[:k]
        scores = np.zeros(len(classes))
        np.add.at(scores, bank_class[nearest], np.exp(row[nearest] / temperature))
        truth = np.searchsorted(classes, y[i])
        # Ranked by score, ties to the smaller class index.
        better = (scores > scores[truth]) | ((scores == scores[truth]) & (np.arange(len(classes)) < truth))
        correct[i] = not better.any()
    assert correct.mean() == r.knn.top1
    expected = np.array([correct[y == label].mean() for label in p.labels])
    wrong = [(int(label), got, want) for label, got, want in zip(p.labels, p.knn_top1, expected) if got != want]
    assert not wrong, f"per-class kNN top-1 (label, server, numpy): {wrong}"


def test_per_class_accuracies_average_to_the_totals(evaluated):
    r = evaluated.report
    p = r.per_class
    assert p.knn_top1.shape == (p.classes,) and p.linear_top1.shape == (p.classes,)
    assert ((0 <= p.knn_top1) & (p.knn_top1 <= 1)).all() and ((0 <= p.linear_top1) & (p.linear_top1 <= 1)).all()
    weights = p.counts / p.counts.sum()
    assert abs(float((weights * p.knn_top1).sum()) - r.knn.top1) <= 1e-12
    assert abs(float((weights * p.linear_top1).sum()) - r.linear.top1) <= 1e-12
    frame = p.frame()
    assert frame["label"].tolist() == p.labels.tolist() and frame["count"].tolist() == p.counts.tolist()
    np.testing.assert_array_equal(frame["knn_top1"].to_numpy(), p.knn_top1)


def test_skip_per_class(client):
    r = client.evaluate(MODEL, DATASET, spec={"skip_per_class": True, "skip_linear": True}, progress=False)
    assert r.ok and r.spec.skip_per_class is True and r.per_class is None
    assert r.knn is not None  # only the diagnostics are left out


def test_skipped_stages_leave_their_parts_empty(client):
    spec = embedeval.MetricSpec(skip_knn=True, skip_linear=True, skip_nearest_negatives=True)
    r = client.evaluate(MODEL, DATASET, spec=spec, progress=False)
    assert r.ok and r.knn is None and r.linear is None and r.nearest_negative_similarity == []
    p = r.per_class
    assert p is not None and p.classes == 10 and p.similarity.shape == (10, 10)
    assert p.knn_top1.size == 0 and p.linear_top1.size == 0
    assert p.nearest_negative_classes.shape == (0, 0) and p.nearest_negative_k == 0
    assert p.frame()[["knn_top1", "linear_top1"]].isna().all().all()
