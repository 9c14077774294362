"""embedeval._background against release servers: a checkpoint handed over
while the server is not up yet is retried with back-off, warned about once,
and evaluated when a server starts on that address."""
from __future__ import annotations

import threading
import time

import embedeval
from conftest import REPO, _free_port, _start, _stop
from embedeval._background import BackgroundEvaluator, Upload

ONNX = REPO / "models" / "infonce-t0.5" / "model.onnx"
CARD = ONNX.with_name("model.toml").read_text()


def test_a_checkpoint_waits_for_the_server_and_is_evaluated_when_it_starts(tmp_path):
    port = _free_port()
    warnings = []
    arrived = threading.Event()
    with embedeval.Client(f"http://127.0.0.1:{port}", retries=0) as client:
        evaluator = BackgroundEvaluator(client, backoff=0.05, max_backoff=0.2, poll=0.1, warn=warnings.append)
        pending = evaluator.submit(Upload(model="py-bg-1", onnx=ONNX, card=CARD, dataset="digits",
                                          spec={"skip_linear": True}))
        pending.add_done_callback(lambda p: arrived.set())
        deadline = time.monotonic() + 30
        while not warnings and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(warnings) == 1 and "py-bg-1" in warnings[0] and "evaluated when" in warnings[0], warnings
        assert not pending.done() and pending.state == "waiting for the server" and pending.failures >= 3
        server = _start(tmp_path / "late", [], port=port)
        try:
            report = pending.result(timeout=120)
            assert report.ok and report.model == "py-bg-1" and arrived.is_set()
            assert len(warnings) == 1, warnings  # one warning per checkpoint, however long it waited
            assert evaluator.pending() == [] and evaluator.wait(0) == []
        finally:
            evaluator.close()
            _stop(server)
