"""ModelService: list, get, register (card from flags, text, path; replace; loss names and warnings),
rename, delete; training runs."""
from __future__ import annotations

import hashlib

import grpc
import pytest

import embedeval
from conftest import REPO

ONNX = REPO / "models" / "infonce-t0.5" / "model.onnx"
DIGITS_CARD = """\
description = "infonce-t0.5 uploaded by the Python tests"

[training]
loss = "infonce"
temperature = 0.5

[input]
scale = 0.0625
mean = [0.0]
std = [1.0]
"""


def test_list_models(client):
    models = client.list_models()
    assert isinstance(models, embedeval.ModelList)
    names = models.names()
    cifar = len([d for d in (REPO / "models").iterdir() if d.name.startswith("cifar10-")])
    # The digits zoo, the bundled run's checkpoints and the CIFAR-10 zoo.
    assert "infonce-t0.5" in names and "simple" in names
    assert len([n for n in names if not n.startswith("py-")]) == 14 + 5 + cifar
    assert names == sorted(names)
    assert models.skipped == []
    m = next(m for m in models if m.name == "infonce-t0.5")
    assert isinstance(m, embedeval.ModelInfo) and len(m.sha256) == 64


def test_get_model(client):
    m = client.get_model("infonce-t0.5")
    assert m.training.loss == "infonce" and m.training.temperature == 0.5
    assert m.input.shape == [-1, 1, 8, 8] and m.input.layout == "NCHW"
    assert m.input.dtype is embedeval.DataType.FLOAT32 and m.input.scale == 0.0625
    assert m.embedding_output == "embedding" and m.feature_output == "features" and m.embedding_dim == 128
    assert {o.name: o.dim for o in m.outputs} == {"embedding": 128, "features": 128}
    assert m.sha256 == hashlib.sha256(ONNX.read_bytes()).hexdigest() and m.size_bytes == ONNX.stat().st_size
    assert m.execution_provider.startswith(("cpu", "cuda"))
    assert m.to_dict()["input"]["dtype"] == "FLOAT32"


def test_get_missing_model_is_not_found(client):
    with pytest.raises(embedeval.NotFound) as e:
        client.get_model("no-such-model")
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "no-such-model" in e.value.message


def test_register_replace_and_delete(client):
    name = "py-model-a"
    info = client.register_model(name, ONNX, loss="infonce", temperature=0.5)
    try:
        assert info.name == name and info.sha256 == hashlib.sha256(ONNX.read_bytes()).hexdigest()
        assert info.training.loss == "infonce" and info.training.temperature == 0.5
        assert info.input.shape == [-1, 1, 8, 8] and "input.shape" in info.inferred
        assert client.get_model(name).sha256 == info.sha256
        with pytest.raises(embedeval.AlreadyExists) as e:
            client.register_model(name, ONNX, loss="infonce", temperature=0.5)
        assert e.value.code == grpc.StatusCode.ALREADY_EXISTS
        # The card as TOML text, with a flag set over it, replacing the model.
        info = client.register_model(name, ONNX, card=DIGITS_CARD, temperature=0.7, replace=True)
        assert info.training.temperature == 0.7 and info.input.scale == 0.0625
        assert info.description.startswith("infonce-t0.5 uploaded")
        assert client.get_model(name).training.temperature == 0.7
    finally:
        client.delete_model(name)
    with pytest.raises(embedeval.NotFound):
        client.get_model(name)
    with pytest.raises(embedeval.NotFound):
        client.delete_model(name)


def test_register_from_card_path_and_bytes(client, tmp_path):
    card = tmp_path / "model.toml"
    card.write_text(DIGITS_CARD)
    # The card gives scale, mean and std, so the preset gives none of them and is not echoed.
    info = client.register_model("py-model-b", ONNX.read_bytes(), card=card, preset="none")
    try:
        assert info.training.loss == "infonce" and info.input.preset == ""
        assert info.input.scale == 0.0625 and list(info.input.mean) == [0.0]
        assert info.size_bytes == ONNX.stat().st_size
    finally:
        client.delete_model("py-model-b")
    # A card as text without preprocessing values: the preset gives them and is echoed.
    card_text = "[training]\nloss = \"infonce\"\ntemperature = 0.5\n"
    info = client.register_model("py-model-c", ONNX, card=card_text, preset="none")
    try:
        assert info.input.preset == "none" and info.input.scale == pytest.approx(1 / 255)
        assert list(info.input.mean) == [0.0] and list(info.input.std) == [1.0]
    finally:
        client.delete_model("py-model-c")


def test_register_errors(client):
    with pytest.raises(embedeval.InvalidArgument) as e:
        client.register_model("Bad/Name", ONNX, loss="infonce", temperature=0.5)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(embedeval.InvalidArgument):  # infonce needs its temperature
        client.register_model("py-no-tau", ONNX, loss="infonce")
    with pytest.raises(embedeval.InvalidArgument):  # not an ONNX file
        client.register_model("py-not-onnx", b"this is not onnx", loss="simple")
    names = client.list_models().names()
    assert "py-no-tau" not in names and "py-not-onnx" not in names


def test_bundled_models_are_read_only(client):
    with pytest.raises(embedeval.FailedPrecondition) as e:
        client.delete_model("infonce-t0.5")
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(embedeval.FailedPrecondition):
        client.register_model("infonce-t0.5", ONNX, loss="infonce", temperature=0.5, replace=True)
    assert client.get_model("infonce-t0.5").training.temperature == 0.5


def test_a_run_of_two_checkpoints(client):
    """Two zoo models registered as checkpoints of one run: listed, shown
    before and after their evaluations, in step order, without warnings."""
    onnx = {10: REPO / "models" / "infonce-t0.5" / "model.onnx", 20: REPO / "models" / "infonce-t0.2" / "model.onnx"}
    tau = {10: 0.5, 20: 0.2}
    names = {step: f"py-run-step{step}" for step in onnx}
    try:
        for step in (20, 10):  # registered out of order: the run is in step order
            info = client.register_model(names[step], onnx[step], card=DIGITS_CARD, temperature=tau[step],
                                         run="py-run", step=step)
            assert (info.training.run, info.training.step) == ("py-run", step)
        summary = next(r for r in client.list_runs() if r.name == "py-run")
        assert isinstance(summary, embedeval.RunSummary)
        assert (summary.checkpoints, summary.first_step, summary.last_step) == (2, 10, 20)
        assert summary.loss == "infonce" and summary.temperature == 0.2

        run = client.get_run("py-run", "digits")
        assert isinstance(run, embedeval.Run) and (run.name, run.dataset, len(run)) == ("py-run", "digits", 2)
        assert [(c.step, c.model, c.report) for c in run] == [(10, names[10], None), (20, names[20], None)]
        assert [c.model_sha256 for c in run] == [hashlib.sha256(onnx[s].read_bytes()).hexdigest() for s in (10, 20)]
        assert run.warnings == []

        reports = {}
        for step in (10, 20):
            reports[step] = client.evaluate(names[step], "digits", spec={"skip_linear": True}, progress=False)
            assert reports[step].ok, reports[step].error
        run = client.get_run("py-run", "digits")
        assert [c.step for c in run] == [10, 20]
        assert [c.report.id for c in run] == [reports[10].id, reports[20].id]
        assert all(c.report.status is embedeval.EvaluationStatus.COMPLETED for c in run)
        assert all(c.report.model_sha256 == c.model_sha256 for c in run)
        assert run.warnings == [], run.warnings

        with pytest.raises(embedeval.NotFound):
            client.get_run("py-no-such-run", "digits")
    finally:
        for name in names.values():
            try:
                client.delete_model(name)
            except embedeval.NotFound:
                pass
    assert "py-run" not in [r.name for r in client.list_runs()]


def _delete_if_there(client, *names):
    for name in names:
        try:
            client.delete_model(name)
        except embedeval.NotFound:
            pass


def test_unknown_losses_are_refused_with_the_nearest_known_names(client):
    try:
        with pytest.raises(embedeval.InvalidArgument) as e:
            client.register_model("py-typo", ONNX, loss="simclr")
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "nt_xent" in e.value.message
        with pytest.raises(embedeval.InvalidArgument) as e:
            client.register_model("py-typo", ONNX, loss="infoNCE", temperature=0.5)
        assert "infonce" in e.value.message
        with pytest.raises(embedeval.InvalidArgument) as e:  # "other" needs the loss's own name
            client.register_model("py-typo", ONNX, loss="other")
        assert "loss_name" in e.value.message
        assert "py-typo" not in client.list_models().names()
    finally:
        _delete_if_there(client, "py-typo")


def test_a_loss_of_ones_own(client):
    name = "py-other-loss"
    info = client.register_model(name, ONNX, loss="other", loss_name="my-loss", preset="none")
    try:
        assert info.training.loss == "other" and info.training.loss_name == "my-loss"
        assert info.training.temperature == 0.0
        again = client.get_model(name)
        assert (again.training.loss, again.training.loss_name) == ("other", "my-loss")
    finally:
        client.delete_model(name)


def test_an_assumed_normalisation_is_a_warning(client):
    onnx = REPO / "models" / "infonce-t0.2" / "model.onnx"
    # No preset and no scale, mean and std: pixels / 255 is assumed, and said.
    info = client.register_model("py-no-preset", onnx, loss="infonce", temperature=0.2)
    try:
        assert any("preset" in w for w in info.warnings), info.warnings
        assert client.get_model("py-no-preset").warnings == info.warnings
    finally:
        client.delete_model("py-no-preset")
    # preset="none" given: the same values, nothing assumed.
    info = client.register_model("py-preset-none", onnx, loss="infonce", temperature=0.2, preset="none")
    try:
        assert info.warnings == [] and info.input.preset == "none"
    finally:
        client.delete_model("py-preset-none")
    # The bundled models' cards give their normalisation.
    assert client.get_model("infonce-t0.2").warnings == []


def test_a_taken_name_names_the_card_keys_that_differ(client):
    name = "py-model-d"
    client.register_model(name, ONNX, loss="infonce", temperature=0.5, preset="none")
    try:
        with pytest.raises(embedeval.AlreadyExists) as e:
            client.register_model(name, ONNX, loss="infonce", temperature=0.7, preset="none")
        assert e.value.code == grpc.StatusCode.ALREADY_EXISTS and "training.temperature" in e.value.message
        assert client.get_model(name).training.temperature == 0.5
    finally:
        client.delete_model(name)


def test_rename_model(client):
    old, new = "py-rename-a", "py-rename-b"
    info = client.register_model(old, ONNX, loss="infonce", temperature=0.5, preset="none")
    try:
        renamed = client.rename_model(old, new)
        assert isinstance(renamed, embedeval.ModelInfo)
        assert renamed.name == new and renamed.sha256 == info.sha256
        with pytest.raises(embedeval.NotFound):
            client.get_model(old)
        assert client.get_model(new).sha256 == info.sha256
        assert client.get_model(new).training.temperature == 0.5
        names = client.list_models().names()
        assert new in names and old not in names
        with pytest.raises(embedeval.NotFound):
            client.rename_model(old, "py-rename-c")
        with pytest.raises(embedeval.AlreadyExists):
            client.rename_model(new, "infonce-t0.5")
        with pytest.raises(embedeval.FailedPrecondition):  # bundled models are read-only
            client.rename_model("infonce-t0.5", "py-rename-c")
        assert client.get_model("infonce-t0.5").name == "infonce-t0.5"
    finally:
        _delete_if_there(client, old, new, "py-rename-c")
