"""Read by mypy (pyproject.toml's [tool.mypy] files), never run: the type
each call is declared to return, so that `make test` fails when an overload
stops giving a call its real type."""
from __future__ import annotations

from typing import Tuple, Union

from typing_extensions import assert_type

from embedeval import Client, Comparison, ComparisonHandle, EvaluationHandle, EvaluationReport
from embedeval.client import Embeddings, Labels


def evaluate(c: Client, flag: bool) -> None:
    assert_type(c.evaluate("m", "d"), EvaluationReport)
    assert_type(c.evaluate("m", "d", detach=False), EvaluationReport)
    assert_type(c.evaluate("m", "d", progress=False, tags={"seed": 1}), EvaluationReport)
    assert_type(c.evaluate("m", "d", detach=True), EvaluationHandle)
    assert_type(c.evaluate("m", "d", None, "", "", False, True), EvaluationHandle)
    assert_type(c.evaluate("m", "d", detach=flag), Union[EvaluationReport, EvaluationHandle])
    assert_type(c.evaluate("m", "d", detach=True).wait(), EvaluationReport)


def compare(c: Client, flag: bool) -> None:
    assert_type(c.compare(["a", "b"], "d"), Comparison)
    assert_type(c.compare(dataset="d", by="seed"), Comparison)
    assert_type(c.compare(dataset="d", detach=True), ComparisonHandle)
    assert_type(c.compare(["a"], "d", None, "", "", False, True), ComparisonHandle)
    assert_type(c.compare(dataset="d", detach=flag), Union[Comparison, ComparisonHandle])
    assert_type(c.compare(dataset="d", detach=True).wait(), Comparison)


def evaluate_embeddings(c: Client, flag: bool) -> None:
    test = ([[0.0, 1.0]], [0])
    assert_type(c.evaluate_embeddings(test=test), EvaluationReport)
    assert_type(c.evaluate_embeddings(test=test, detach=False), EvaluationReport)
    assert_type(c.evaluate_embeddings(test=test, detach=True), EvaluationHandle)
    assert_type(c.evaluate_embeddings(test=test, detach=flag), Union[EvaluationReport, EvaluationHandle])


def embed(c: Client, flag: bool) -> None:
    assert_type(c.embed("m", dataset="d"), Embeddings)
    assert_type(c.embed("m", dataset="d", return_labels=True), Tuple[Embeddings, Labels])
    assert_type(c.embed("m", dataset="d", return_labels=flag), Union[Embeddings, Tuple[Embeddings, Labels]])
