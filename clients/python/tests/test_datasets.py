"""DatasetService: list, get, folder uploads, numpy arrays, delete."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import embedeval
from conftest import REPO
from embedeval import _toml


def test_list_and_get_digits(client):
    assert "digits" in [d.name for d in client.list_datasets()]
    d = client.get_dataset("digits")
    assert d.format == "embedeval-npy" and d.num_classes == 10 and d.image_shape == [8, 8, 1]
    assert d.split_sizes == {"train": 1257, "test": 540}
    assert len(d.id) == 64 and d.license == "CC BY 4.0"


def test_missing_dataset_is_not_found(client):
    with pytest.raises(embedeval.NotFound):
        client.get_dataset("no-such-dataset")
    with pytest.raises(embedeval.NotFound):
        client.delete_dataset("no-such-dataset")


def test_bundled_dataset_is_read_only(client):
    with pytest.raises(embedeval.FailedPrecondition):
        client.delete_dataset("digits")


def test_register_folder_with_manifest(client):
    info = client.register_dataset("py-digits-copy", REPO / "datasets" / "digits")
    try:
        assert info.name == "py-digits-copy" and info.split_sizes == {"train": 1257, "test": 540}
        assert info.id == client.get_dataset("digits").id  # the same files, the same content id
        with pytest.raises(embedeval.AlreadyExists):
            client.register_dataset("py-digits-copy", REPO / "datasets" / "digits")
    finally:
        client.delete_dataset("py-digits-copy")
    with pytest.raises(embedeval.NotFound):
        client.get_dataset("py-digits-copy")


def test_register_image_folder_with_header_fields(client):
    info = client.register_dataset("py-pets", REPO / "tests" / "data" / "resnet2048" / "pets", image_size=32,
                                   channels=3, test_split="val")
    try:
        assert info.format == "image-folder" and info.num_classes == 3 and info.image_shape == [32, 32, 3]
        assert info.image_size == 32 and info.test_split == "val"
        assert set(info.split_sizes) == {"train", "val"}
        # The class folders, sorted, name the labels.
        assert info.class_names == ["cat", "dog", "fox"]
        assert client.get_dataset("py-pets").class_names == ["cat", "dog", "fox"]
    finally:
        client.delete_dataset("py-pets")


def test_register_arrays(client):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 17, size=(60, 8, 8, 1), dtype=np.uint8), rng.integers(0, 3, 60)
    test = rng.integers(0, 17, size=(30, 8, 8), dtype=np.uint8), rng.integers(0, 3, 30)  # [n, H, W]: one channel
    info = client.register_arrays("py-arrays", {"train": train, "test": test}, pixel_max=16, source="random")
    try:
        assert info.format == "embedeval-npy" and info.num_classes == 3 and info.image_shape == [8, 8, 1]
        assert info.split_sizes == {"train": 60, "test": 30} and info.source == "random"
        emb, labels = client.embed("infonce-t0.5", dataset="py-arrays", split="test", return_labels=True)
        assert emb.shape == (30, 128) and np.array_equal(labels, test[1])
        direct = client.embed("infonce-t0.5", images=test[0][..., None])
        np.testing.assert_allclose(emb, direct, rtol=0, atol=1e-6)
        with pytest.raises(embedeval.AlreadyExists):
            client.register_arrays("py-arrays", {"train": train, "test": test})
    finally:
        client.delete_dataset("py-arrays")


def test_register_arrays_with_own_split_names(client):
    rng = np.random.default_rng(2)
    split = lambda n: (rng.integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8), np.arange(n) % 4)  # noqa: E731
    info = client.register_arrays("py-arrays-2", {"fit": split(40), "holdout": split(20)}, num_classes=5,
                                  test_split="holdout", train_split="fit")
    try:
        assert info.num_classes == 5 and info.test_split == "holdout" and info.train_split == "fit"
        r = client.evaluate("infonce-t0.5", "py-arrays-2", spec={"skip_linear": True, "knn_k": 10}, progress=False)
        assert r.ok and r.test_split == "holdout" and r.train_split == "fit" and r.num_test == 20 and r.num_train == 40
    finally:
        client.delete_dataset("py-arrays-2")


def test_register_arrays_with_class_names(client):
    names = ["zero", "one", "two", "three"]
    rng = np.random.default_rng(3)
    train = rng.integers(0, 17, size=(48, 8, 8, 1), dtype=np.uint8), np.arange(48) % 4
    # No test row of class 2: the per-class names follow the test split's labels.
    test = rng.integers(0, 17, size=(24, 8, 8, 1), dtype=np.uint8), np.array([0, 1, 3] * 8)
    info = client.register_arrays("py-named", {"train": train, "test": test}, pixel_max=16, class_names=names)
    try:
        assert info.class_names == names and info.num_classes == 4  # num_classes from the names
        assert client.get_dataset("py-named").class_names == names
        assert {d.name: d.class_names for d in client.list_datasets()}["py-named"] == names
        r = client.evaluate("infonce-t0.5", "py-named", spec={"skip_linear": True, "knn_k": 10},
                            progress=False).raise_for_status()
        p = r.per_class
        assert p is not None and p.labels.tolist() == [0, 1, 3]
        assert p.names == [names[label] for label in p.labels] == ["zero", "one", "three"]
        assert p.frame()["name"].tolist() == ["zero", "one", "three"]
        # Stored with the report, and drawn on the figures' axes.
        assert client.get_evaluation(r.id).per_class.names == ["zero", "one", "three"]
        confusion = client.render_figure(r.id, "confusion")
        assert confusion.marks == 3 * 3 and confusion.evaluation_ids == [r.id]
        texts = {(t.text or "").strip() for t in ET.fromstring(confusion.data).iter() if t.tag.endswith("text")}
        assert {"zero", "one", "three"} <= texts, texts
    finally:
        client.delete_dataset("py-named")


def test_a_manifest_with_the_wrong_number_of_class_names_is_invalid(client, tmp_path):
    # Past the client's own check (register_arrays): a folder with its manifest.
    rng = np.random.default_rng(4)
    for split, n in (("train", 12), ("test", 6)):
        np.save(tmp_path / f"{split}_images.npy", rng.integers(0, 17, size=(n, 8, 8, 1), dtype=np.uint8))
        np.save(tmp_path / f"{split}_labels.npy", (np.arange(n) % 3).astype("<i8"))
    manifest = {
        "name": "py-misnamed", "format": "embedeval-npy", "num_classes": 3, "image_shape": [8, 8, 1],
        "pixel_max": 16, "class_names": ["a", "b"],
        "splits": {split: {"images": f"{split}_images.npy", "labels": f"{split}_labels.npy", "size": n}
                   for split, n in (("train", 12), ("test", 6))},
    }
    (tmp_path / "dataset.toml").write_text(_toml.dumps(manifest), encoding="utf-8")
    with pytest.raises(embedeval.InvalidArgument, match="class_names"):
        client.register_dataset("py-misnamed", tmp_path)
    with pytest.raises(embedeval.NotFound):
        client.get_dataset("py-misnamed")
    # With one name per class it is taken.
    manifest["class_names"] = ["a", "b", "c"]
    (tmp_path / "dataset.toml").write_text(_toml.dumps(manifest), encoding="utf-8")
    try:
        assert client.register_dataset("py-misnamed", tmp_path).class_names == ["a", "b", "c"]
    finally:
        client.delete_dataset("py-misnamed")


def test_replace_swaps_a_dataset_and_reports_keep_their_version(client):
    first = REPO / "tests" / "data" / "resnet2048" / "pets"
    old = client.register_dataset("py-versions", first, image_size=32, channels=3, test_split="val")
    try:
        with pytest.raises(embedeval.AlreadyExists):
            client.register_dataset("py-versions", first, image_size=32, channels=3, test_split="val")
        before = client.evaluate("cifar10-infonce-t0.5", "py-versions", {"skip_linear": True}, progress=False)
        new = client.register_dataset("py-versions", first, image_size=24, channels=3, test_split="val",
                                      replace=True)
        assert new.id != old.id and new.image_shape == [24, 24, 3]
        after = client.evaluate("cifar10-infonce-t0.5", "py-versions", {"skip_linear": True}, progress=False)
        assert (before.dataset_id, after.dataset_id) == (old.id, new.id)
        # The 24 x 24 images are enlarged to the model's 32 x 32 and the
        # report says by how much.
        assert after.preprocessing.image_height == 24
        assert after.preprocessing.resize_factor_height == pytest.approx(32 / 24)
        assert before.preprocessing.resize_factor_height == 0.0
    finally:
        client.delete_dataset("py-versions")
