"""Shape errors the client finds itself, without a server: in its own
arguments a plain ValueError (no call is made), in a reply a
MalformedReply, which is both an Internal and a ValueError."""
from __future__ import annotations

import pickle

import grpc
import numpy as np
import pytest

import embedeval
from embedeval._proto import embedding_pb2, evaluation_pb2, tensor_pb2
from embedeval.errors import error_for


class _NoCalls:
    """A service stub that fails the test if the client calls it."""

    def __getattr__(self, name):
        raise AssertionError(f"the client called {name} despite a bad argument")


@pytest.fixture
def client():
    with embedeval.Client("127.0.0.1:1") as c:
        c._embedding = c._evaluation = c._datasets = c._models = _NoCalls()
        yield c


def _images(n, shape=(4, 4, 1)):
    return np.zeros((n, *shape), np.uint8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda c: c.embed("m", images=np.zeros(5, np.uint8)), "batch"),
        (lambda c: c.embed("m", images=np.zeros((0, 4, 4, 1), np.uint8)), "batch"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros(6), [0] * 6)), r"2-D array \[n, d\], got shape \(6,\)"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((2, 3, 1)), [0, 1])), "2-D"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((0, 3)), [])), "non-empty"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((3, 2)), [0, 1])), "1-D array of 3 labels"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((3, 2)), [[0], [1], [2]])), "1-D array of 3 labels"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((3, 2)), [0, 1, 2]), test_positive=np.zeros((3, 4))),
         "test_positive"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((3, 2)), [0, 1, 2]), train=(np.zeros((4, 5)), [0] * 4)),
         "dimension 5"),
        (lambda c: c.evaluate_embeddings(test=(np.zeros((3, 2)), [0, 1, 2]), train=(np.zeros((4, 2)), [0] * 3)),
         "train labels"),
        (lambda c: c.register_arrays("x", {"test": (np.zeros((2, 4), np.uint8), [0, 1])}), r"\[n, H, W, C\]"),
        (lambda c: c.register_arrays("x", {"test": (np.zeros((1, 2, 4, 4, 1), np.uint8), [0])}), r"\[n, H, W, C\]"),
        (lambda c: c.register_arrays("x", {"test": (_images(0), [])}), r"\[n, H, W, C\]"),
        (lambda c: c.register_arrays("x", {"test": (_images(2), [0, 1, 2])}), "1-D array of 2 labels"),
        (lambda c: c.register_arrays("x", {"a": (_images(1), [0]), "b": (_images(1, (4, 5, 1)), [0])}), "other splits"),
    ],
)
def test_argument_shapes_are_value_errors_before_any_call(client, call, match):
    with pytest.raises(ValueError, match=match) as e:
        call(client)
    assert not isinstance(e.value, embedeval.EmbedevalError)  # the caller's mistake, not the service's


def test_malformed_reply_is_internal_and_value_error():
    err = embedeval.MalformedReply("PerClass.counts holds 2 values for 3 classes")
    assert isinstance(err, embedeval.Internal) and isinstance(err, ValueError)
    assert err.code == grpc.StatusCode.INTERNAL and err.message.startswith("PerClass")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is embedeval.MalformedReply and again.message == err.message
    # A server's INTERNAL is still the plain Internal: not a shape error of the client's.
    assert type(error_for(grpc.StatusCode.INTERNAL, "boom")) is embedeval.Internal


def test_per_class_of_the_wrong_length_is_a_value_error():
    msg = evaluation_pb2.PerClass(labels=[1, 2, 3], counts=[4, 5], tolerance=[0.1, 0.2, 0.3], similarity=[0.0] * 9)
    with pytest.raises(ValueError, match=r"PerClass\.counts holds 2 values for 3 classes") as e:
        embedeval.PerClass.from_proto(msg)
    assert isinstance(e.value, embedeval.MalformedReply)


def _tensor(rows, dim, data=None):
    data = np.zeros((rows, dim), "<f4").tobytes() if data is None else data
    return tensor_pb2.Tensor(dtype=tensor_pb2.FLOAT32, shape=[rows, dim], data=data)


class _FakeCall:
    def __init__(self, events):
        self._events = list(events)

    def __iter__(self):
        return iter(self._events)

    def cancel(self):
        pass


class _FakeEmbedding:
    def __init__(self, responses):
        self.responses = responses

    def Embed(self, request, timeout=None, metadata=None):
        return _FakeCall(self.responses)


@pytest.mark.parametrize(
    "responses, match",
    [
        ([embedding_pb2.EmbedResponse(offset=0, embeddings=_tensor(2, 3)),
          embedding_pb2.EmbedResponse(offset=3, embeddings=_tensor(1, 3))], "do not tile the rows"),
        ([embedding_pb2.EmbedResponse(offset=0, embeddings=_tensor(2, 3)),
          embedding_pb2.EmbedResponse(offset=2, embeddings=_tensor(1, 4))], "dimension 4 after 3"),
        ([embedding_pb2.EmbedResponse(offset=0, embeddings=_tensor(2, 3))], "2 rows for 3 images"),
        ([embedding_pb2.EmbedResponse(offset=0, embeddings=_tensor(3, 3, data=b"\0" * 8))], r"shape \[3, 3\] with 8"),
        ([embedding_pb2.EmbedResponse(offset=0, embeddings=tensor_pb2.Tensor(
            dtype=tensor_pb2.FLOAT32, shape=[9], data=b"\0" * 36))], r"\[n, d\]"),
        ([embedding_pb2.EmbedResponse(offset=0)], "without embeddings"),
    ],
)
def test_embed_replies_of_the_wrong_shape_are_malformed_replies(responses, match):
    with embedeval.Client("127.0.0.1:1") as c:
        c._embedding = _FakeEmbedding(responses)
        with pytest.raises(embedeval.MalformedReply, match=match) as e:
            c.embed("m", images=np.zeros((3, 4, 4, 1), np.uint8))
    assert isinstance(e.value, ValueError) and isinstance(e.value, embedeval.Internal)


def test_embed_reply_of_the_right_shape():
    rows = np.arange(12, dtype="<f4").reshape(4, 3)
    responses = [embedding_pb2.EmbedResponse(offset=2, embeddings=_tensor(2, 3, rows[2:].tobytes())),
                 embedding_pb2.EmbedResponse(offset=0, embeddings=_tensor(2, 3, rows[:2].tobytes()))]
    with embedeval.Client("127.0.0.1:1") as c:
        c._embedding = _FakeEmbedding(responses)
        out = c.embed("m", images=np.zeros((4, 4, 4, 1), np.uint8))
        emb, labels = c.embed("m", images=np.zeros((4, 4, 4, 1), np.uint8), return_labels=True)
    assert out.dtype == np.float32 and out.shape == (4, 3) and np.array_equal(out, rows)
    assert np.array_equal(emb, rows) and labels.dtype == np.int64 and labels.shape == (0,)
