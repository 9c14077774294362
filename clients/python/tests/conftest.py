"""Fixtures: real release servers of embedeval, started once per session.

The binary is ``$EMBEDEVAL_BIN`` (default ``<repo>/target/release/embedeval``);
the servers run with cwd = the repository root (where the binary finds
``.deps/onnxruntime/``), the bundled ``models/`` and ``datasets/``, and a
throwaway ``--data-dir``. Tests that need a server are skipped when the
binary is missing, unless ``EMBEDEVAL_REQUIRE_SERVER=1``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

# The fixtures fork (servers, health checks, openssl) while gRPC channels are
# open; gRPC's fork handlers abort such children on Pythons whose subprocess
# uses fork() (3.9). Off before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest  # noqa: E402

import embedeval  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("EMBEDEVAL_BIN", REPO / "target" / "release" / "embedeval"))
TOKEN = "s3cret-token-for-tests"


@dataclass
class Server:
    """A running server and how to reach it."""

    url: str
    port: int
    process: subprocess.Popen
    log: Path
    data_dir: Path
    ca_cert: Optional[Path] = None
    token: Optional[str] = None

    def client(self, **kwargs) -> embedeval.Client:
        kwargs.setdefault("ca_cert", self.ca_cert)
        kwargs.setdefault("token", self.token)
        return embedeval.Client(self.url, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary() -> Path:
    if not BIN.is_file():
        if os.environ.get("EMBEDEVAL_REQUIRE_SERVER") == "1":
            pytest.fail(f"no embedeval binary at {BIN} (set EMBEDEVAL_BIN or build it: cargo build --release)")
        pytest.skip(f"no embedeval binary at {BIN} (set EMBEDEVAL_BIN or build it: cargo build --release)")
    return BIN


def _start(tmp: Path, extra: List[str], *, scheme: str = "http", ca_cert: Optional[Path] = None,
           token: Optional[str] = None, port: Optional[int] = None) -> Server:
    binary = _binary()
    port = port or _free_port()
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True)
    log = tmp / "server.log"
    env = dict(os.environ)
    env.setdefault("EMBEDEVAL_LOG", "warn")
    for var in ("EMBEDEVAL_AUTH_TOKEN_FILE", "EMBEDEVAL_TLS_CERT", "EMBEDEVAL_TLS_KEY", "EMBEDEVAL_DATABASE_URL",
                "EMBEDEVAL_ADDR", "EMBEDEVAL_SERVER", "EMBEDEVAL_CA_CERT"):
        env.pop(var, None)
    cmd = [
        str(binary), "serve",
        "--addr", f"127.0.0.1:{port}",
        "--models-dir", str(REPO / "models"),
        "--datasets-dir", str(REPO / "datasets"),
        "--data-dir", str(data_dir),
        "--shutdown-grace", "1s",
        *extra,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"{scheme}://127.0.0.1:{port}"
    server = Server(url=url, port=port, process=process, log=log, data_dir=data_dir, ca_cert=ca_cert, token=token)
    health = [str(binary), "health", "--server", url, "--timeout", "2"]
    if ca_cert is not None:
        health += ["--ca-cert", str(ca_cert)]
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the server exited with {process.returncode}:\n{tail}")
        probe = subprocess.run(health, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = probe.returncode == 0
        if ok:
            return server
        if time.monotonic() > deadline:
            _stop(server)
            raise RuntimeError(f"the server was not SERVING after 90 s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.25)


def _stop(server: Server) -> None:
    p = server.process
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=15)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A plaintext server without auth."""
    s = _start(tmp_path_factory.mktemp("server"), [])
    try:
        yield s
    finally:
        _stop(s)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A self-signed certificate for 127.0.0.1 (openssl CLI): (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-addext", "keyUsage=digitalSignature,keyEncipherment",
         "-addext", "extendedKeyUsage=serverAuth"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return cert, key


@pytest.fixture(scope="session")
def secure_server(tmp_path_factory: pytest.TempPathFactory, tls_cert: tuple) -> Iterator[Server]:
    """A TLS server that requires a bearer token, with small limits: 1 MiB
    messages, one evaluation at a time and no queue."""
    cert, key = tls_cert
    tmp = tmp_path_factory.mktemp("secure")
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    s = _start(
        tmp,
        ["--tls-cert", str(cert), "--tls-key", str(key), "--auth-token-file", str(token_file),
         "--max-message-bytes", str(1 << 20), "--max-evaluations", "1", "--evaluation-queue", "0"],
        scheme="https", ca_cert=cert, token=TOKEN,
    )
    try:
        yield s
    finally:
        _stop(s)


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[embedeval.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="session")
def resnet2048(client: embedeval.Client) -> str:
    """tests/data/resnet2048/model.onnx registered (2048-d `features`, 32x32x3 input)."""
    name = "py-resnet2048"
    client.register_model(name, REPO / "tests" / "data" / "resnet2048" / "model.onnx", loss="other",
                          loss_name="resnet-stand-in", preset="imagenet")
    return name
