"""Tags against a real server: a model's tags are its card's ``[training]``
keys (but the measured ``final_loss`` and ``train_seconds``) and its
``[tags]`` table, read here from ``models/*/model.toml`` with tomllib;
``list_models(tags=...)`` filters by them; ``evaluate(..., tags=...)`` tags
the report over the model's; ``register_model(..., tags=...)`` writes them
into the card as ``--tag`` does; and ``compare(..., by="seed")`` groups the
rows by every other tag, checked against an independent pandas groupby of
the comparison's own rows (mean, sample std, Student-t 95% interval with
scipy), and ``get_comparison(id, by=...)`` gives the same groups back; the
accuracy figure of that comparison is drawn along the seed and coloured by
tau (``render_figure(..., x="seed", group_by="temperature")``).

The seed groups use the digits seed sweep in ``sweeps/digits-seeds/`` (the
zoo's infonce models retrained with seeds 1 and 2, uploaded here with their
cards) when it is there; without it, copies of the zoo's ONNX files with a
slightly different input normalisation (so that their metrics differ)
tagged ``seed = 1`` stand in. Two models with the same ONNX file and
preprocessing would be one model to a comparison of every model; these are
named, and differ in preprocessing anyway."""
from __future__ import annotations

import hashlib
import json
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import embedeval
from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - older Pythons
    import tomli as tomllib

DATASET = "digits"
ZOO = REPO / "models"
SWEEP = REPO / "sweeps" / "digits-seeds"
#: [training] keys that are measured, not set up: not tags.
MEASURED = ("final_loss", "train_seconds")
#: The metrics a group summarises, in order, and how each is read off a report.
METRICS = ("uniformity", "tolerance", "alignment", "positive_similarity", "nn1_similarity",
           "penalty_entropy", "effective_rank", "knn_top1", "linear_top1", "map_at_r", "r_precision")
#: The comparison's settings: everything but the linear probe and the
#: per-class diagnostics (a group then has no linear_top1 summary).
SPEC = {"skip_linear": True, "skip_per_class": True, "knn_k": 50}
#: The zoo's digits infonce models the seed groups are built around.
TAUS = {"0.1": "infonce-t0.1", "0.2": "infonce-t0.2", "0.5": "infonce-t0.5"}


def _text(value: Any) -> str:
    """A card value as tag text, written out here from the contract
    (proto ModelInfo.tags: "values as text (numbers as written: "0.2",
    "300")"), for the values the zoo's cards hold: whole floats without
    ".0", as the server prints them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _card(path: Path) -> Dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _card_tags(card: Dict[str, Any]) -> Dict[str, str]:
    """The tags a card gives its model, read independently of the client."""
    tags = {k: _text(v) for k, v in card.get("training", {}).items() if k not in MEASURED}
    tags.update({k: _text(v) for k, v in card.get("tags", {}).items()})
    return tags


def _zoo_cards() -> Dict[str, Dict[str, Any]]:
    """The bundled models' cards by model name (the folder's name)."""
    return {p.parent.name: _card(p) for p in sorted(ZOO.glob("*/model.toml")) if (p.parent / "model.onnx").is_file()}


def test_model_tags_are_the_card_training_keys_and_tags_table(client):
    cards = _zoo_cards()
    models = {m.name: m for m in client.list_models()}
    assert set(cards) <= set(models)
    for name, card in cards.items():
        assert models[name].tags == _card_tags(card), name
        assert not set(MEASURED) & set(models[name].tags)


def test_list_models_filters_by_tags(client):
    wanted = {"loss": "infonce", "temperature": "0.2"}
    cards = _zoo_cards()
    expected_zoo = sorted(
        name for name, card in cards.items()
        if card["training"].get("loss") == "infonce" and _text(card["training"].get("temperature", "")) == "0.2"
    )
    # The digits and CIFAR-10 zoo models and the run's checkpoints at tau 0.2.
    assert "infonce-t0.2" in expected_zoo and "cifar10-infonce-t0.2" in expected_zoo and len(expected_zoo) >= 3
    got = client.list_models(tags=wanted)
    assert isinstance(got, embedeval.ModelList) and got.names() == sorted(got.names())
    assert [n for n in got.names() if n in cards] == expected_zoo
    # Uploaded models (other tests') that have the tags are listed too: the
    # filter is the unfiltered listing, filtered by ModelInfo.tags.
    everything = client.list_models()
    assert got.names() == [m.name for m in everything if all(m.tags.get(k) == v for k, v in wanted.items())]
    # Numbers are the text the server writes: 0.2 is "0.2".
    assert client.list_models(tags={"loss": "infonce", "temperature": 0.2}).names() == got.names()
    assert client.list_models(tags={"loss": "infonce", "temperature": "0.20"}).names() == []
    assert client.list_models(tags={}).names() == everything.names()
    with pytest.raises(ValueError, match="tag key"):
        client.list_models(tags={"not a key": "x"})  # refused before the call, as the server would


def test_evaluate_tags_the_report_over_the_model_tags(client):
    model = "infonce-t0.5"
    card_tags = _card_tags(_card(ZOO / model / "model.toml"))
    assert card_tags["seed"] == "0" and card_tags["temperature"] == "0.5"
    spec = {"skip_linear": True, "skip_penalty": True, "skip_per_class": True, "knn_k": 20}
    report = client.evaluate(model, DATASET, spec=spec, tags={"sweep": "x", "seed": 7}, progress=False)
    report.raise_for_status()
    # The model's tags, the evaluation's added, and a key the model has too taking the evaluation's value.
    assert report.tags == {**card_tags, "sweep": "x", "seed": "7"}
    assert client.get_evaluation(report.id).tags == report.tags
    assert client.get_model(model).tags == card_tags  # the model is not changed
    untagged = client.evaluate(model, DATASET, spec=spec, progress=False)
    assert untagged.tags == card_tags


def test_register_model_writes_tags_into_the_card(client):
    name = "py-tags-upload"
    card = ZOO / "infonce-t0.5" / "model.toml"
    sweep = "py-tags-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    info = client.register_model(name, ZOO / "infonce-t0.5" / "model.onnx", card=card,
                                 tags={"seed": "3", "temperature": "0.5", "sweep": sweep})
    try:
        # seed and temperature are [training] keys of the card: set there, of their type.
        assert info.training.seed == 3 and info.training.temperature == 0.5
        assert info.tags == {**_card_tags(_card(card)), "seed": "3", "sweep": sweep}
        assert client.list_models(tags={"sweep": sweep}).names() == [name]
        assert client.list_models(tags={"sweep": sweep, "seed": "0"}).names() == []
        # A value that is not of the card's type is refused before the upload.
        with pytest.raises(ValueError, match="seed"):
            client.register_model("py-tags-bad", ZOO / "infonce-t0.5" / "model.onnx", card=card, tags={"seed": "s1"})
        with pytest.raises(embedeval.NotFound):
            client.get_model("py-tags-bad")
    finally:
        client.delete_model(name)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sweep_models() -> List[Tuple[str, Path, Dict[str, Any]]]:
    """The finished models of the seed sweep (card and ONNX file written,
    the card's onnx_sha256 that of the file) at the zoo's taus: (folder
    name, folder, card)."""
    out = []
    for folder in sorted(SWEEP.glob("*")) if SWEEP.is_dir() else []:
        onnx, toml = folder / "model.onnx", folder / "model.toml"
        if not (onnx.is_file() and toml.is_file()):
            continue
        try:
            card = _card(toml)
        except tomllib.TOMLDecodeError:
            continue  # being written
        training = card.get("training", {})
        if card.get("onnx_sha256") != _sha256(onnx) or training.get("loss") != "infonce":
            continue
        if _text(training.get("temperature")) in TAUS and training.get("seed", 0) != 0:
            out.append((folder.name, folder, card))
    return out


@pytest.fixture(scope="module")
def seed_models(client) -> Iterator[List[str]]:
    """The models of the seed groups: the zoo's infonce models at the taus
    the sweep has, and the sweep's models uploaded with their cards (their
    seed given again as a tag: a [training] key, kept an integer). Without
    the sweep: the zoo's infonce-t0.2 and -t0.5 and a copy of each, std 0.9
    instead of 1 (other embeddings), tagged seed = 1."""
    uploaded: List[str] = []
    try:
        sweep = _sweep_models()
        if sweep:
            taus = sorted({_text(card["training"]["temperature"]) for _, _, card in sweep})
            names = [TAUS[t] for t in taus]
            for folder_name, folder, card in sweep:
                name = f"py-{folder_name}"
                seed = card["training"]["seed"]
                info = client.register_model(name, folder / "model.onnx", card=folder / "model.toml",
                                             tags={"seed": str(seed)}, replace=True)
                uploaded.append(name)
                assert info.training.seed == seed and info.tags == _card_tags(card)
                names.append(name)
        else:
            names = [TAUS["0.2"], TAUS["0.5"]]
            for tau in ("0.2", "0.5"):
                zoo = ZOO / TAUS[tau]
                text = (zoo / "model.toml").read_text(encoding="utf-8").replace("std = [1.0]", "std = [0.9]")
                assert "std = [0.9]" in text
                name = f"py-{TAUS[tau]}-s1"
                info = client.register_model(name, zoo / "model.onnx", card=text, tags={"seed": "1"}, replace=True)
                uploaded.append(name)
                assert info.training.seed == 1 and info.tags["seed"] == "1"
                names.append(name)
        yield names
    finally:
        for name in uploaded:
            client.delete_model(name)


def _value(report: embedeval.EvaluationReport, metric: str) -> float:
    """A report's metric as the groups define it (NaN when absent)."""
    if metric == "nn1_similarity":
        v: Optional[float] = report.nearest_negative_similarity[0] if report.nearest_negative_similarity else None
    elif metric in ("knn_top1", "linear_top1"):
        result = report.knn if metric == "knn_top1" else report.linear
        v = result.top1 if result is not None else None
    elif metric in ("map_at_r", "r_precision"):
        v = getattr(report.retrieval, metric) if report.retrieval is not None else None
    else:
        v = getattr(report, metric)
    return math.nan if v is None else float(v)


def _reference_groups(rows: List[embedeval.EvaluationReport], by: str) -> List[Dict[str, Any]]:
    """The groups of `rows` along the tag `by`, by pandas: the rows sharing
    every tag but `by` (with the report's loss and tau where its tags do not
    say them), in the order of their first row; per metric, over the
    COMPLETED rows that have it: n, mean, std (ddof 1; 0 for one value) and
    t.ppf(0.975, n - 1) * std / sqrt(n) (0 for one value)."""
    pd = pytest.importorskip("pandas")
    stats = pytest.importorskip("scipy.stats")
    records = []
    for r in rows:
        key = {k: v for k, v in r.tags.items() if k != by}
        key.setdefault("loss", r.loss)
        if by != "temperature":
            key.setdefault("temperature", _text(float(r.temperature)))
        records.append({
            "key": json.dumps(sorted(key.items())), "model": r.model, "value": r.tags.get(by, ""),
            "completed": r.status == embedeval.EvaluationStatus.COMPLETED,
            **{m: _value(r, m) for m in METRICS},
        })
    frame = pd.DataFrame(records)
    groups = []
    for key, rows_of in frame.groupby("key", sort=False):
        done = rows_of[rows_of["completed"]]
        metrics = []
        for m in METRICS:
            values = done[m].dropna()
            n = len(values)
            if n == 0:
                continue
            std = float(values.std(ddof=1)) if n > 1 else 0.0
            interval = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else 0.0
            metrics.append({"metric": m, "n": n, "mean": float(values.mean()), "std": std, "interval": interval})
        groups.append({"tags": dict(json.loads(key)), "models": rows_of["model"].tolist(),
                       "values": rows_of["value"].tolist(), "metrics": metrics})
    return groups


def _assert_groups_match(groups: List[embedeval.TagGroup], reference: List[Dict[str, Any]]) -> None:
    assert len(groups) == len(reference)
    for got, want in zip(groups, reference):
        assert isinstance(got, embedeval.TagGroup)
        assert got.tags == want["tags"]
        assert (got.models, got.values) == (want["models"], want["values"])
        assert [s.metric for s in got.metrics] == [s["metric"] for s in want["metrics"]]
        for s, w in zip(got.metrics, want["metrics"]):
            assert s.n == w["n"], (got.models, s.metric)
            for field in ("mean", "std", "interval"):
                # The server's t quantiles are tabulated to 9 decimals: 1e-9 relative.
                assert getattr(s, field) == pytest.approx(w[field], rel=1e-9, abs=1e-9), (got.models, s.metric, field)


@pytest.fixture(scope="module")
def seed_comparison(client, seed_models) -> embedeval.Comparison:
    """The comparison of the seed models by seed."""
    # "simple" is named too: the tags filter leaves it out (its loss is not infonce).
    return client.compare([*seed_models, "simple"], dataset=DATASET, spec=SPEC, progress=False,
                          tags={"loss": "infonce", "dataset": DATASET}, by="seed")


def test_compare_by_seed_groups_match_a_pandas_groupby(client, seed_models, seed_comparison):
    comp = seed_comparison
    assert sorted(r.model for r in comp.rows) == sorted(seed_models) and comp.excluded == []
    assert all(r.ok for r in comp.rows)
    assert comp.by == "seed"
    reference = _reference_groups(comp.rows, "seed")
    _assert_groups_match(comp.groups, reference)
    # One group per tau, each with the zoo's seed 0 and at least one other seed.
    taus = {g.tags["temperature"] for g in comp.groups}
    assert len(comp.groups) == len(taus) >= 1
    for group in comp.groups:
        assert group.tags["loss"] == "infonce" and "seed" not in group.tags
        assert "0" in group.values and len(group.models) >= 2
        assert group.metric("knn_top1").n == len(group.models) and group.metric("linear_top1") is None
        assert group.metric("uniformity").std > 0  # different models, different embeddings
    # The frame: one row per group, the seeds joined.
    frame = comp.groups_to_pandas()
    assert frame["seed"].tolist() == [",".join(g.values) for g in comp.groups]
    assert frame["temperature"].tolist() == [g.tags["temperature"] for g in comp.groups]
    assert frame["knn_top1_mean"].tolist() == [g.metric("knn_top1").mean for g in comp.groups]

    # Stored: the same groups again, and along any other tag on request.
    again = client.get_comparison(comp.id, by="seed")
    assert again.by == "seed" and again.groups == comp.groups
    plain = client.get_comparison(comp.id)
    assert plain.by == "" and plain.groups == []
    by_tau = client.get_comparison(comp.id, by="temperature")
    assert by_tau.by == "temperature"
    _assert_groups_match(by_tau.groups, _reference_groups(by_tau.rows, "temperature"))
    assert all("temperature" not in g.tags for g in by_tau.groups)


#: The models scripts/figures compares for docs/seeds*.md, as seed_models names them.
FIGURES_SWEEP = ["infonce-t0.1", "infonce-t0.2", "infonce-t0.5", "py-infonce-t0.1-s1", "py-infonce-t0.1-s2",
                 "py-infonce-t0.2-s1", "py-infonce-t0.2-s2", "py-infonce-t0.5-s1", "py-infonce-t0.5-s2"]


def _table_mismatches(path: Path, reference: List[Dict[str, Any]], by: str) -> Tuple[List[str], List[str]]:
    """A markdown group table (``compare --by BY --format markdown``)
    against reference groups: its lines, and where it differs from them (its
    columns: loss, tau unless `by`, the tags that tell the groups apart,
    models, `by`, the metrics; a cell "mean ± interval" for n > 1, "mean" for
    one value, "-" for none, to 4 decimals)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    keys = ["loss"] + (["temperature"] if by != "temperature" else [])
    first = reference[0]["tags"]
    keys += sorted({k for g in reference for k in g["tags"] if k not in keys and g["tags"].get(k) != first.get(k)})
    columns = [*keys, "models", by, *METRICS]
    if (header, len(rows)) != (columns, len(reference)):
        return lines, [f"{path.name}: columns {header}, {len(rows)} rows; want {columns}, {len(reference)}"]
    bad = []
    for row, want in zip(rows, reference):
        cells = dict(zip(header, row))
        expected = {**{k: want["tags"].get(k, "") for k in keys}, "models": str(len(want["models"])),
                    by: ",".join(want["values"])}
        where = f"{path.name} {row[:len(keys)]}"
        bad += [f"{where}: {k} {cells[k]!r}, want {v!r}" for k, v in expected.items() if cells[k] != v]
        stats = {s["metric"]: s for s in want["metrics"]}
        for m in METRICS:
            s = stats.get(m)
            mean, pm, interval = cells[m].partition(" ± ")
            ok = mean == "-" if s is None else (
                bool(pm) == (s["n"] > 1) and abs(float(mean) - s["mean"]) <= 1e-4
                and abs(float(interval or 0) - s["interval"]) <= 1e-4)
            if not ok:
                want_cell = "-" if s is None else f"{s['mean']:.4f} ± {s['interval']:.4f}"
                bad.append(f"{where}: {m} {cells[m]!r}, want {want_cell!r}")
    return lines, bad


def test_book_seed_tables_are_a_pandas_groupby_of_the_sweep(client, seed_models):
    """The book's seed-sweep table (docs/seeds.md, which
    docs/book/using-it.md shows) and docs/seeds_by_temperature.md, which
    scripts/figures writes with
    ``compare <the zoo's infonce models and the sweep's> --dataset digits
    --by seed|temperature --format markdown`` and the default spec, against
    the pandas groupby of the same models compared here with the default
    spec: the columns, each group's tags, model count and seeds, and every
    "mean ± interval" to its 4 decimals; the book's "Using it" chapter
    shows docs/seeds.md's table as it is."""
    if not SWEEP.is_dir():
        pytest.skip("no seed sweep in sweeps/digits-seeds")
    assert seed_models == FIGURES_SWEEP
    comp = client.compare(seed_models, dataset=DATASET, by="seed", progress=False)
    assert sorted(r.model for r in comp.rows) == sorted(seed_models) and all(r.ok for r in comp.rows)
    lines, bad = _table_mismatches(REPO / "docs" / "seeds.md", _reference_groups(comp.rows, "seed"), "seed")
    assert "\n".join(lines) in (REPO / "docs" / "book" / "using-it.md").read_text(encoding="utf-8")
    by_tau = client.get_comparison(comp.id, by="temperature")
    bad += _table_mismatches(REPO / "docs" / "seeds_by_temperature.md",
                             _reference_groups(by_tau.rows, "temperature"), "temperature")[1]
    assert not bad, "\n".join(bad)


def _svg_texts(data: bytes) -> List[str]:
    """The text of every <text> element of an SVG, stripped."""
    return ["".join(e.itertext()).strip() for e in ET.fromstring(data).iter() if e.tag.rsplit("}", 1)[-1] == "text"]


def test_accuracy_figure_along_the_seed(client, seed_comparison):
    comp = seed_comparison
    ids = sorted(r.id for r in comp.rows)
    seeds = {r.tags["seed"] for r in comp.rows}
    taus = {r.tags["temperature"] for r in comp.rows}
    assert len(seeds) >= 2
    # Along the seed, one colour per tau: one model of a colour at each
    # seed, so a mark each (kNN alone: skip_linear) and no aggregate.
    f = client.render_figure(comp.id, "accuracy", x="seed", group_by="temperature")
    texts = _svg_texts(f.data)
    assert "Accuracy against seed" in texts and "temperature" in texts, texts
    assert taus <= set(texts), texts  # the legend: one entry per tau
    assert not any(t.startswith("Several models at one x") for t in texts), texts
    assert f.marks == len(comp.rows) and sorted(f.evaluation_ids) == ids
    # Against tau, one colour per loss (the default): the seeds of one tau
    # are one mean with its t-interval, each seed a faint mark behind it.
    f = client.render_figure(comp.id, "accuracy")
    texts = _svg_texts(f.data)
    assert "Accuracy against τ" in texts and any(t.startswith("Several models at one x") for t in texts), texts
    assert f.marks == len(comp.rows) and sorted(f.evaluation_ids) == ids
    # Coloured by seed on the tau axis: one model per colour and tau again.
    f = client.render_figure(comp.id, "accuracy", group_by="seed")
    texts = _svg_texts(f.data)
    assert seeds <= set(texts) and not any(t.startswith("Several models at one x") for t in texts), texts
    assert f.marks == len(comp.rows)
    # The other kinds draw tau and the loss only.
    with pytest.raises(embedeval.InvalidArgument):
        client.render_figure(comp.id, "ut", x="seed")


def test_compare_tags_that_no_model_has_are_invalid(client):
    with pytest.raises(embedeval.InvalidArgument) as e:
        client.compare(["simple", "infonce-t0.5"], dataset=DATASET, tags={"loss": "nt_xent"}, progress=False)
    assert "no models to compare" in e.value.message
