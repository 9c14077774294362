"""EmbeddingService: dataset splits and inline images, in streamed chunks."""
from __future__ import annotations

import numpy as np
import pytest

import embedeval
from conftest import REPO

DIGITS = REPO / "datasets" / "digits"
MODEL = "infonce-t0.5"


@pytest.fixture(scope="module")
def digits_test(client):
    emb, labels = client.embed(MODEL, dataset="digits", split="test", return_labels=True)
    return emb, labels


def test_embed_a_dataset_split(digits_test):
    emb, labels = digits_test
    assert emb.shape == (540, 128) and emb.dtype == np.float32 and emb.flags.writeable
    assert np.array_equal(labels, np.load(DIGITS / "test_labels.npy"))
    golden = np.load(REPO / "models" / MODEL / "golden_embedding.npy")
    np.testing.assert_allclose(emb[: len(golden)], golden, atol=1e-4)


def test_inline_images_give_the_same_rows(client, digits_test):
    images = np.load(DIGITS / "test_images.npy")
    emb = client.embed(MODEL, images=images)
    np.testing.assert_allclose(emb, digits_test[0], rtol=0, atol=1e-6)


def test_small_chunks_are_put_together_by_offset(client, digits_test):
    emb = client.embed(MODEL, dataset="digits", split="test", chunk_rows=37)
    np.testing.assert_array_equal(emb, digits_test[0])


def test_normalize_and_features(client, digits_test):
    emb = client.embed(MODEL, dataset="digits", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    ref = digits_test[0] / np.linalg.norm(digits_test[0], axis=1, keepdims=True)
    np.testing.assert_allclose(emb, ref, atol=1e-6)
    feats, labels = client.embed(MODEL, dataset="digits", split="train", output="features", return_labels=True)
    assert feats.shape == (1257, 128) and len(labels) == 1257


def test_float32_inputs_are_fed_as_they_are(client, digits_test):
    images = np.load(DIGITS / "test_images.npy")[:50]
    x = (images.astype(np.float32) * 0.0625).transpose(0, 3, 1, 2)  # the card: scale 1/16, NCHW
    np.testing.assert_allclose(client.embed(MODEL, images=x), digits_test[0][:50], atol=1e-5)


def test_2048_dimensional_features_beyond_4_mib(client, resnet2048):
    assert client.get_model(resnet2048).input.shape == [-1, 3, 32, 32]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(600, 32, 32, 3), dtype=np.uint8)
    feats = client.embed(resnet2048, images=images, output="features")
    assert feats.shape == (600, 2048) and feats.nbytes > 4 * 2**20 and np.isfinite(feats).all()
    half = client.embed(resnet2048, images=images[300:], output="features")
    np.testing.assert_allclose(feats[300:], half, atol=1e-5)
    emb = client.embed(resnet2048, images=images[:10])
    assert emb.shape == (10, 128)


def test_a_default_grpcio_channel_receives_2048_d_features(server, client, resnet2048):
    """The server cuts Embed responses by bytes (--response-bytes, 2 MiB), so a
    plain grpcio channel with its default 4 MiB receive limit gets all 4.9 MB."""
    import grpc

    from embedeval._proto import embedding_pb2, embedding_pb2_grpc, tensor_pb2

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(600, 32, 32, 3), dtype=np.uint8)
    request = embedding_pb2.EmbedRequest(
        model=resnet2048,
        output="features",
        inputs=tensor_pb2.Tensor(dtype=tensor_pb2.UINT8, shape=list(images.shape), data=images.tobytes()),
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:  # default options
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        chunks = list(stub.Embed(request, timeout=120))
    assert all(len(c.SerializeToString()) < 4 * 2**20 for c in chunks)
    rows = np.concatenate(
        [np.frombuffer(c.embeddings.data, "<f4").reshape(list(c.embeddings.shape)) for c in chunks]
    )
    assert rows.shape == (600, 2048) and rows.nbytes > 4 * 2**20
    np.testing.assert_allclose(rows, client.embed(resnet2048, images=images, output="features"), atol=1e-5)


def test_embed_errors(client):
    with pytest.raises(embedeval.NotFound):
        client.embed("no-such-model", dataset="digits")
    with pytest.raises(embedeval.NotFound):
        client.embed(MODEL, dataset="no-such-dataset")
    with pytest.raises(embedeval.InvalidArgument) as e:
        client.embed(MODEL, images=np.zeros((2, 8, 8, 3), np.uint8))  # the model takes one channel
    assert "shape" in e.value.message
    with pytest.raises(embedeval.InvalidArgument):
        client.embed(MODEL, dataset="digits", output="no-such-output")
    with pytest.raises(embedeval.InvalidArgument):
        client.embed(MODEL, dataset="digits", split="no-such-split")
