#!/usr/bin/env python3
"""The CIFAR-10 zoo's table beside Wang & Liu's Table 1, from a stored
comparison (the JSON `embedeval compare --json` prints), and what agrees with
the paper in numbers: rank correlations of tau with uniformity and tolerance
per loss, where accuracy peaks, the hard loss's uniformity range, the simple
loss. Writes a Markdown file and replaces the book chapter's text between
``<!-- cifar10:begin -->`` and ``<!-- cifar10:end -->``; the figures'
paths are relative to each file written (the figures lie beside
COMPARISON.json).

    scripts/cifar10_table.py COMPARISON.json OUT.md docs/book/cifar10.md
"""
from __future__ import annotations

import json
import os
import math
import sys
from pathlib import Path

# Wang & Liu (CVPR 2021), Table 1: CIFAR-10, ResNet-18, 200 epochs.
# (linear top-1 %, uniformity, tolerance) by loss and tau.
PAPER = {
    ("infonce", 0.07): (79.75, 3.86, 0.04),
    ("infonce", 0.3): (83.27, 3.60, 0.178),
    ("infonce", 0.7): (82.69, 3.17, 0.333),
    ("infonce", 1.0): (82.21, 2.96, 0.372),
    ("simple", 0.0): (74.83, 1.68, 0.61),
    ("hard_infonce", 0.07): (79.2, None, None),
    ("hard_infonce", 0.3): (83.63, None, None),
    ("hard_infonce", 0.7): (84.19, None, None),
    ("hard_infonce", 1.0): (84.19, None, None),
    ("hard_simple", 0.0): (84.84, 3.85, 0.030),
}
# What the paper says of the hard loss across tau without a value per tau.
HARD_UNIFORMITY, HARD_TOLERANCE = 3.87, 0.03



def retrieval_sentence(sweep, taus):
    """'; MAP@R a–b, ρ(τ, MAP@R) = x (ρ(τ, kNN top-1) = y)' for a sweep whose
    rows have the retrieval metrics, else ''."""
    maps = [r.get("retrieval", {}).get("map_at_r") for r in sweep]
    knn = [r.get("knn", {}).get("top1") for r in sweep]
    if any(m is None for m in maps):
        return ""
    return (
        f"; MAP@R {min(maps):.4f}–{max(maps):.4f}, ρ(τ, MAP@R) = {spearman(taus, maps):.2f} "
        f"against ρ(τ, kNN top-1) = {spearman(taus, knn):.2f}"
    )

def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion p over n trials."""
    if n == 0:
        return (math.nan, math.nan)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: list[float], y: list[float]) -> float:
    if len(x) < 3:
        return math.nan
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (sx * sy) if sx and sy else math.nan


def f(v, digits=4) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def main() -> None:
    comparison_path, out_path, chapter_path = map(Path, sys.argv[1:4])
    comparison = json.loads(comparison_path.read_text())
    rows = [r for r in comparison["rows"] if r.get("status") == "COMPLETED"]
    if not rows:
        sys.exit("no completed row in the comparison")
    n_test = int(rows[0]["num_test"])
    n_train = int(rows[0]["num_train"])

    lines = [
        f"Comparison `{comparison['id']}`: the CIFAR-10 zoo on CIFAR-10's test split "
        f"({n_test:,} images) against its training split ({n_train:,} images: the kNN bank, "
        "k = 200, T = 0.1, and the linear probe on the 64-d backbone features); uniformity "
        "and tolerance on the L2-normalised embeddings. Ours | the paper's (Wang & Liu, "
        "Table 1: ResNet-18, 200 epochs); intervals are 95% Wilson. MAP@R and R-Precision: the "
        "test split querying the training split (pytorch-metric-learning's definitions; the "
        "paper has none).",
        "",
        "| model | loss | τ | linear top-1 % | kNN top-1 % | uniformity | tolerance | MAP@R | R-Precision |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def key(r):
        return (r["loss"], r.get("temperature", 0.0))

    for r in sorted(rows, key=key):
        loss, tau = r["loss"], float(r.get("temperature", 0.0))
        paper = PAPER.get((loss, round(tau, 2)), (None, None, None))
        if loss == "hard_infonce" and paper[0] is not None:
            paper = (paper[0], HARD_UNIFORMITY, HARD_TOLERANCE)
        lin = r.get("linear", {}).get("top1")
        knn = r.get("knn", {}).get("top1")
        lo, hi = wilson(lin, n_test) if lin is not None else (None, None)
        klo, khi = wilson(knn, n_test) if knn is not None else (None, None)
        approx = "≈" if loss == "hard_infonce" else ""
        lines.append(
            f"| {r['model']} | {loss} | {tau:g} | "
            f"{f(lin * 100 if lin is not None else None, 2)} [{f(lo * 100 if lo is not None else None, 1)}, "
            f"{f(hi * 100 if hi is not None else None, 1)}] \\| {f(paper[0], 2)} | "
            f"{f(knn * 100 if knn is not None else None, 2)} [{f(klo * 100 if klo is not None else None, 1)}, "
            f"{f(khi * 100 if khi is not None else None, 1)}] | "
            f"{f(r.get('uniformity'), 3)} \\| {approx}{f(paper[1], 2)} | "
            f"{f(r.get('tolerance'), 3)} \\| {approx}{f(paper[2], 3)} | "
            f"{f(r.get('retrieval', {}).get('map_at_r'), 4)} | "
            f"{f(r.get('retrieval', {}).get('r_precision'), 4)} |"
        )

    lines += ["", "What agrees with the paper and what does not, in numbers:", ""]
    for loss in ("infonce", "hard_infonce"):
        sweep = sorted((r for r in rows if r["loss"] == loss), key=key)
        if len(sweep) < 2:
            continue
        taus = [float(r["temperature"]) for r in sweep]
        unif = [r.get("uniformity") for r in sweep]
        tol = [r.get("tolerance") for r in sweep]
        lin = [r.get("linear", {}).get("top1") for r in sweep]
        rho_u, rho_t = spearman(taus, unif), spearman(taus, tol)
        best = max(range(len(sweep)), key=lambda i: lin[i] or 0)
        lo, hi = wilson(lin[best], n_test)
        overlapping = [
            f"{taus[i]:g}" for i in range(len(sweep)) if i != best and lin[i] is not None and wilson(lin[i], n_test)[1] >= lo
        ]
        peak_where = "at the smallest τ" if best == 0 else "at the largest τ" if best == len(sweep) - 1 else "inside the sweep"
        lines.append(
            f"- `{loss}` over τ = {', '.join(f'{t:g}' for t in taus)}: Spearman ρ(τ, uniformity) = "
            f"{f(rho_u, 2)}, ρ(τ, tolerance) = {f(rho_t, 2)} "
            + ("(the paper: −1 and +1); " if loss == "infonce" else f"(the paper: flat, near {HARD_UNIFORMITY} and {HARD_TOLERANCE}); ")
            + 
            f"uniformity {f(min(unif), 3)}–{f(max(unif), 3)}, tolerance {f(min(tol), 3)}–{f(max(tol), 3)}; "
            f"linear top-1 peaks {peak_where}, at τ = {taus[best]:g} ({f(lin[best] * 100, 2)}% "
            f"[{f(lo * 100, 1)}, {f(hi * 100, 1)}])"
            + (f", within the interval of τ = {', '.join(overlapping)}" if overlapping else ", outside every other τ's interval")
            + retrieval_sentence(sweep, taus)
            + "."
        )
    for loss in ("simple", "hard_simple"):
        for r in rows:
            if r["loss"] == loss:
                lines.append(
                    f"- `{loss}`: uniformity {f(r.get('uniformity'), 3)}, tolerance {f(r.get('tolerance'), 3)}, "
                    f"linear top-1 {f(r.get('linear', {}).get('top1', math.nan) * 100, 2)}% "
                    f"(the paper: {PAPER[(loss, 0.0)][1]}, {PAPER[(loss, 0.0)][2]}, {PAPER[(loss, 0.0)][0]}%)."
                )
    figures = [
        ("Uniformity against tolerance, CIFAR-10", "cifar10_ut.png"),
        ("kNN and linear accuracy against τ, CIFAR-10", "cifar10_accuracy.png"),
        ("The positive against the nearest negatives, CIFAR-10", "cifar10_negatives.png"),
        ("The relative penalty on the nearest negatives, CIFAR-10", "cifar10_penalty.png"),
    ]

    def text_for(path: Path) -> str:
        """The table, the sentences and the figures, linked from `path`."""
        where = Path(os.path.relpath(comparison_path.resolve().parent, path.resolve().parent))
        shown = [line for alt, name in figures for line in ("", f"![{alt}]({(where / name).as_posix()})")]
        return "\n".join(lines + shown) + "\n"

    out_path.write_text(text_for(out_path))
    text = text_for(chapter_path)

    chapter = chapter_path.read_text()
    begin, end = "<!-- cifar10:begin -->", "<!-- cifar10:end -->"
    if begin in chapter and end in chapter:
        head, rest = chapter.split(begin, 1)
        _, tail = rest.split(end, 1)
        chapter_path.write_text(head + begin + "\n" + text + end + tail)
    else:
        print(f"{chapter_path} has no cifar10 markers: the table is in {out_path} only", file=sys.stderr)


if __name__ == "__main__":
    main()
