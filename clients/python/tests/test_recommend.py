"""The recommendations of a real comparison (``comparison.recommendations``)
against an independent numpy computation from the comparison's own rows:
per loss, the Pareto front of (uniformity, tolerance) by brute force, its
knee, the best kNN and linear top-1 with their 95% Wilson intervals, the
models tied with the best, the recommended model and the start of its
reason; and GetComparison gives the same recommendations back.

The reference follows the definitions (proto/embedeval/v1/evaluation.proto,
``Recommendation``), not the server's code: per loss, the COMPLETED rows
with both uniformity and tolerance, by increasing tau (ties in the
comparison's order); both coordinates higher-is-better; the knee with both
axes scaled to [0, 1] over the front's points, the point of largest
perpendicular distance from the chord between the first and last point of
the front when it has three points or more, else the largest sum of the
scaled coordinates, ties to the earlier point; Wilson intervals with
z = 1.959963984540054 over ``num_test``; tied: the models whose upper bound
reaches the best one's lower bound, by the linear probe (the kNN without
it); the recommendation the best model when it is tied with no other, else
the tied model nearest the knee with both axes scaled to [0, 1] over all the
loss's rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import pytest

import embedeval
from conftest import REPO

DATASET = "digits"
Z = 1.959963984540054
# Everything the recommendation does not use is skipped (uniformity,
# tolerance, the kNN, the probe and the per-class tolerances are computed
# with the default settings).
SPEC = {"skip_alignment": True, "skip_nearest_negatives": True, "skip_penalty": True,
        "skip_effective_rank": True}


def _zoo() -> List[str]:
    """The bundled zoo's model folders (models/<name>/model.onnx)."""
    return sorted(p.parent.name for p in (REPO / "models").glob("*/model.onnx"))


@pytest.fixture(scope="module")
def compared(client) -> embedeval.Comparison:
    """Every zoo model that is not a checkpoint of a training run, compared
    on digits (as ``compare --all``): the CIFAR-10 ones are left out."""
    zoo = set(_zoo())
    models = [m for m in client.list_models() if m.name in zoo and not m.training.run]
    digits = {m.name for m in models if m.training.dataset == DATASET}
    assert len(digits) >= 14, sorted(digits)
    comp = client.compare([m.name for m in models], dataset=DATASET, spec=SPEC, progress=False)
    assert {row.model for row in comp.rows} == digits and all(row.ok for row in comp.rows)
    assert {e.model for e in comp.excluded} == {m.name for m in models} - digits
    assert all(e.kind == "does not fit" for e in comp.excluded)
    return comp


# -- the reference ---------------------------------------------------------------


def wilson(p: float, n: int) -> Tuple[float, float]:
    """The 95% Wilson score interval of a proportion p over n trials, clamped to [0, 1]."""
    if n == 0:
        return 0.0, 1.0
    p, n = np.float64(p), np.float64(n)
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def brute_front(points: np.ndarray) -> List[int]:
    """Indices of the points no other point matches or beats in both
    coordinates and beats in one, by increasing first coordinate (ties by
    index)."""
    n = len(points)
    keep = [
        i for i in range(n)
        if not any(
            j != i and (points[j] >= points[i]).all() and (points[j] > points[i]).any() for j in range(n)
        )
    ]
    return sorted(keep, key=lambda i: (points[i, 0], i))


def scaled(points: np.ndarray, over: np.ndarray) -> np.ndarray:
    """`points` with each axis mapped to [0, 1] over the range of `over` (a
    flat axis to 0)."""
    lo, hi = over.min(axis=0), over.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (points - lo) / span


def knee_of(points: np.ndarray, front: List[int]) -> Optional[int]:
    """The knee of the front (an index into `points`): both axes scaled to
    [0, 1] over the front, whose ends are then (0, 1) and (1, 0); the point
    farthest beyond the chord between them towards (1, 1), i.e. the largest
    sum of scaled coordinates; on a tie, the smaller row index (smaller τ).
    A front of fewer than three models has no knee."""
    if len(front) < 3:
        return None
    f = scaled(points[front], points[front])
    score = f.sum(axis=1)
    best = score.max()
    return min(i for i, s in zip(front, score) if s == best)


def rust_float(x: float) -> str:
    """How the server (Rust's ``{}``) writes an f64: the shortest digits that
    read back as it, no exponent, no trailing ".0"."""
    return np.format_float_positional(x, unique=True, trim="-")


@dataclass
class Expected:
    loss: str
    rows: List[embedeval.EvaluationReport]
    front: List[str]
    knee: str
    best_knn: Optional[Tuple[embedeval.EvaluationReport, float, float, float]]
    best_linear: Optional[Tuple[embedeval.EvaluationReport, float, float, float]]
    protocol: str
    tied: List[str]
    recommended: embedeval.EvaluationReport


def _best(rows, top1):
    """The most accurate row (the first of equals) with its top-1 and interval."""
    measured = [(i, top1(r)) for i, r in enumerate(rows) if top1(r) is not None]
    if not measured:
        return None
    best = max(v for _, v in measured)
    i = next(i for i, v in measured if v == best)
    return (rows[i], best, *wilson(best, rows[i].num_test))


def expected(comp: embedeval.Comparison, loss: str) -> Expected:
    rows = [r for r in comp.rows
            if r.loss == loss and r.ok and r.uniformity is not None and r.tolerance is not None]
    rows = sorted(rows, key=lambda r: r.temperature)  # stable: ties in the comparison's order
    points = np.array([[r.uniformity, r.tolerance] for r in rows], dtype=np.float64)
    front = brute_front(points)
    knee = knee_of(points, front)

    def knn(r):
        return r.knn.top1 if r.knn is not None else None

    def linear(r):
        return r.linear.top1 if r.linear is not None else None

    best_knn, best_linear = _best(rows, knn), _best(rows, linear)
    protocol, best, top1 = ("linear", best_linear, linear) if best_linear is not None else ("kNN", best_knn, knn)
    assert best is not None, f"{loss}: no accuracy at all"
    best_row, _, best_lo, _ = best
    tied = [r for r in rows if top1(r) is not None and (r is best_row or wilson(top1(r), r.num_test)[1] >= best_lo)]
    if len(tied) == 1:
        recommended = best_row
    else:
        # The tied model nearest the knee, both axes scaled over all the loss's rows.
        target = knee if knee is not None else rows.index(best_row)
        s = scaled(points, points)
        distance = [float(((s[rows.index(r)] - s[target]) ** 2).sum()) for r in tied]
        recommended = tied[int(np.argmin(distance))]
    return Expected(
        loss=loss, rows=rows, front=[rows[i].model for i in front],
        knee=rows[knee].model if knee is not None else "",
        best_knn=best_knn, best_linear=best_linear, protocol=protocol,
        tied=[r.model for r in tied], recommended=recommended,
    )


# -- the checks ----------------------------------------------------------------


def test_one_recommendation_per_loss(compared):
    losses = sorted({r.loss for r in compared.rows
                     if r.ok and r.uniformity is not None and r.tolerance is not None})
    assert [rec.loss for rec in compared.recommendations] == losses
    assert {"infonce", "hard_infonce", "simple", "hard_simple"} <= set(losses)


def _check_interval(got: Optional[embedeval.AccuracyInterval], want, what: str) -> None:
    if want is None:
        assert got is None, what
        return
    row, top1, lo, hi = want
    assert got is not None, what
    assert (got.model, got.temperature, got.top1) == (row.model, row.temperature, top1), what
    assert abs(got.lo - lo) <= 1e-12 and abs(got.hi - hi) <= 1e-12, f"{what}: {got} vs [{lo!r}, {hi!r}]"


def test_recommendations_match_the_reference(compared):
    disagreements = []
    for rec in compared.recommendations:
        want = expected(compared, rec.loss)
        got = {"front": rec.front, "knee": rec.knee, "tied": rec.tied, "recommended": rec.recommended}
        ref = {"front": want.front, "knee": want.knee, "tied": want.tied, "recommended": want.recommended.model}
        disagreements += [(rec.loss, k, got[k], ref[k]) for k in got if got[k] != ref[k]]
        _check_interval(rec.best_knn, want.best_knn, f"{rec.loss} best_knn")
        _check_interval(rec.best_linear, want.best_linear, f"{rec.loss} best_linear")
        assert rec.recommended_temperature == want.recommended.temperature, rec.loss
    assert not disagreements, "(loss, field, server, reference): " + repr(disagreements)


def test_tolerance_falls_are_the_largest_per_class_drops(compared):
    for rec in compared.recommendations:
        rows = expected(compared, rec.loss).rows
        if len(rows) < 2:
            assert rec.tolerance_falls == [], rec.loss
            continue
        large, small = rows[-1].per_class, rows[0].per_class
        falls = []
        for label, at_large in zip(large.labels.tolist(), large.tolerance.tolist()):
            i = small.labels.tolist().index(label)
            at_small = small.tolerance[i]
            if np.isfinite(at_large) and np.isfinite(at_small) and at_large > at_small:
                falls.append((-(at_large - at_small), label, at_large, at_small))
        falls.sort()
        want = [(label, at_large, at_small, -neg) for neg, label, at_large, at_small in falls[:10]]
        got = [(c.label, c.at_largest_tau, c.at_smallest_tau, c.fall) for c in rec.tolerance_falls]
        assert [g[0] for g in got] == [w[0] for w in want], rec.loss
        for g, w in zip(got, want):
            assert g[1:] == pytest.approx(w[1:], abs=1e-12), (rec.loss, g, w)


def test_reasons(compared):
    for rec in compared.recommendations:
        want = expected(compared, rec.loss)
        # Models of a loss with a temperature are named by τ, the others by name.
        def name(r):
            return f"τ = {rust_float(r.temperature)}" if r.temperature > 0 else r.model

        if want.recommended.temperature > 0:
            assert rec.reason.startswith(f"τ = {rust_float(rec.recommended_temperature)}: "), rec.reason
        assert rec.reason.startswith(f"{name(want.recommended)}: "), rec.reason
        row, top1, lo, hi = want.best_linear if want.protocol == "linear" else want.best_knn
        assert f"best {want.protocol} top-1 {top1:.3f} [{lo:.3f}, {hi:.3f}]" in rec.reason, rec.reason
        if len(want.tied) == 1:
            assert rec.reason.endswith("and no other model's 95% interval reaches it"), rec.reason
        else:
            assert "cannot tell them apart" in rec.reason and "knee" in rec.reason, rec.reason
            others = [r for r in want.rows if r.model in want.tied and r.model != row.model]
            if all(r.temperature > 0 for r in others):
                listed = "τ = " + ", ".join(rust_float(r.temperature) for r in others)
            else:
                listed = ", ".join(r.model for r in others)
            assert f"{listed} " in rec.reason, rec.reason


def test_the_frame_marks_the_recommendation(compared):
    pytest.importorskip("pandas")
    for rec in compared.recommendations:
        want = expected(compared, rec.loss)
        df = rec.frame()
        assert df["model"].tolist() == [r.model for r in want.rows]
        assert df.loc[df["on_front"], "model"].tolist() == sorted(want.front, key=df["model"].tolist().index)
        # A front of fewer than three models has no knee.
        assert df.loc[df["knee"], "model"].tolist() == ([want.knee] if want.knee else [])
        assert df.loc[df["recommended"], "model"].tolist() == [want.recommended.model]
        assert set(df.loc[df["tied"], "model"]) == set(want.tied)
        for (_, line), row in zip(df.iterrows(), want.rows):
            if row.linear is not None:
                lo, hi = wilson(row.linear.top1, row.num_test)
                assert abs(line["linear_lo"] - lo) <= 1e-12 and abs(line["linear_hi"] - hi) <= 1e-12


def test_get_comparison_gives_the_same_recommendations(client, compared):
    again = client.get_comparison(compared.id)
    assert again.id == compared.id and [r.id for r in again.rows] == [r.id for r in compared.rows]
    assert again.recommendations == compared.recommendations
    for loss in (rec.loss for rec in compared.recommendations):
        assert again.recommend(loss) == compared.recommend(loss)
    with pytest.raises(ValueError, match="hard_infonce"):
        again.recommend()  # several losses: which one?
