"""DatasetService: list, get, folder uploads, numpy arrays, delete."""
from __future__ import annotations

import numpy as np
import pytest

import embedeval
from conftest import REPO


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
