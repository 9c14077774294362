"""TLS and the bearer token, against a second server (TLS, --auth-token-file,
1 MiB messages, one evaluation slot and no queue)."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

import embedeval
from conftest import TOKEN


def test_tls_with_token(secure_server):
    assert secure_server.url.startswith("https://")
    with secure_server.client() as c:
        assert c.tls
        assert "infonce-t0.5" in c.list_models().names()
        emb = c.embed("infonce-t0.5", dataset="digits", split="test")
        assert emb.shape == (540, 128)  # streamed under the 1 MiB message limit


def test_ca_cert_as_bytes_and_host_port_url(secure_server):
    pem = secure_server.ca_cert.read_bytes()
    with embedeval.Client(f"127.0.0.1:{secure_server.port}", token=TOKEN, ca_cert=pem) as c:
        assert c.tls and c.get_dataset("digits").num_classes == 10


def test_missing_or_wrong_token_is_unauthenticated(secure_server):
    with secure_server.client(token=None) as c:
        with pytest.raises(embedeval.Unauthenticated) as e:
            c.list_models()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(embedeval.Unauthenticated):
            c.embed("infonce-t0.5", dataset="digits")
    with secure_server.client(token="wrong") as c:
        with pytest.raises(embedeval.Unauthenticated):
            c.get_model("infonce-t0.5")


def test_untrusted_certificate_and_plaintext_fail(secure_server):
    with secure_server.client(ca_cert=None, retries=0) as c:  # system roots: our self-signed CA is not there
        with pytest.raises(embedeval.Unavailable):
            c.list_models()
    with embedeval.Client(f"http://127.0.0.1:{secure_server.port}", token=TOKEN, retries=0) as c:
        with pytest.raises(embedeval.Unavailable):
            c.list_models()


def test_message_over_the_server_limit_is_resource_exhausted(secure_server):
    images = np.zeros((20000, 8, 8, 1), np.uint8)  # 1.28 MB in one request > 1 MiB
    with secure_server.client() as c:
        with pytest.raises(embedeval.ResourceExhausted) as e:
            c.embed("infonce-t0.5", images=images)
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_full_queue_is_resource_exhausted(secure_server):
    long = {"uniformity_exact_max_rows": 0, "uniformity_samples": 10**9, "skip_linear": True}
    with secure_server.client() as c:
        first = c.evaluate("infonce-t0.5", "digits", spec=long, detach=True)
        try:
            with pytest.raises(embedeval.ResourceExhausted):
                c.evaluate("infonce-t1", "digits", spec=long, detach=True)
        finally:
            assert first.cancel() is embedeval.EvaluationStatus.CANCELLED
