"""Fixtures of the Lightning callback's suite: a release server that can be
stopped and started again on the same port and data folder, and a CIFAR-10
subset (1,000 training images, 100 per class, and 500 test images) both as
the server's dataset ``cifar10-1k`` and as tensors to train on.

The binary is ``$EMBEDEVAL_BIN`` (default ``<repo>/target/release/embedeval``);
CIFAR-10 is ``../shared/data/cifar10-jpeg.tar.gz`` (``$EMBEDEVAL_CIFAR10_TAR``),
and the suite is skipped with a loud line where it is absent.
"""
from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

# The server is started and stopped while gRPC channels are open.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("EMBEDEVAL_BIN", REPO / "target" / "release" / "embedeval"))
CIFAR = Path(os.environ.get("EMBEDEVAL_CIFAR10_TAR", REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
DATASET = "cifar10-1k"
TRAIN_PER_CLASS = 100
TEST_PER_CLASS = 50

sys.path.insert(0, str(REPO / "training"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A release server on a fixed port and data folder: :meth:`stop` and
    :meth:`start` again keep both."""

    tmp: Path
    port: int = field(default_factory=_free_port)
    process: Optional[subprocess.Popen] = None
    starts: int = 0
    #: --shutdown-grace: how long running jobs may finish after SIGTERM.
    grace: str = "1s"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.tmp / "data").mkdir(parents=True, exist_ok=True)
        (self.tmp / "models").mkdir(parents=True, exist_ok=True)
        (self.tmp / "datasets").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_")}
        env["EMBEDEVAL_LOG"] = "warn"
        self.starts += 1
        log = open(self.tmp / f"server-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--addr", f"127.0.0.1:{self.port}", "--models-dir", str(self.tmp / "models"),
             "--datasets-dir", str(self.tmp / "datasets"), "--data-dir", str(self.tmp / "data"),
             "--shutdown-grace", self.grace],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log_tail()}")
            probe = subprocess.run([str(BIN), "health", "--server", self.url, "--timeout", "2"], cwd=REPO, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server was not SERVING after 90 s: {self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it: running jobs get the grace,
        then are cancelled."""
        p = self.process
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)
        self.process = None

    def log_tail(self) -> str:
        path = self.tmp / f"server-{self.starts}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def cli(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_")}
        done = subprocess.run([str(BIN), *args, "--server", self.url], cwd=REPO, env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise AssertionError(f"embedeval {' '.join(args)}: {done.stderr}")
        return done.stdout


@dataclass
class Cifar:
    """The subset as uint8 arrays ([n, 32, 32, 3]) and labels."""

    train: np.ndarray
    train_labels: np.ndarray
    folder: Path


def _subset(folder: Path) -> Cifar:
    from PIL import Image

    per = {"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS}
    by_class: Dict[Tuple[str, str], List[tarfile.TarInfo]] = {}
    with tarfile.open(CIFAR) as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts
            if m.isfile() and len(parts) == 4 and parts[1] in per:
                by_class.setdefault((parts[1], parts[2]), []).append(m)
        assert len(by_class) == 20, sorted(by_class)
        images, labels = [], []
        classes = sorted({c for _, c in by_class})
        for (split, name), members in sorted(by_class.items()):
            dest = folder / split / name
            dest.mkdir(parents=True, exist_ok=True)
            for m in sorted(members, key=lambda m: m.name)[: per[split]]:
                source = tar.extractfile(m)
                assert source is not None
                data = source.read()
                (dest / Path(m.name).name).write_bytes(data)
                if split == "train":
                    images.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
                    labels.append(classes.index(name))
    return Cifar(np.stack(images), np.asarray(labels, dtype=np.int64), folder)


@pytest.fixture(scope="session")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Cifar:
    if not CIFAR.is_file():
        print(f"\n*** SKIPPED: CIFAR-10 is not at hand ({CIFAR}): the Lightning callback was not tested ***")
        pytest.skip("CIFAR-10 archive absent")
    return _subset(tmp_path_factory.mktemp("cifar") / "cifar10-1k")


@pytest.fixture()
def server(tmp_path: Path, cifar: Cifar) -> Iterator[Server]:
    """A fresh server per test with the subset registered as ``cifar10-1k``."""
    if not BIN.is_file():
        pytest.fail(f"no embedeval binary at {BIN} (set EMBEDEVAL_BIN or build it: cargo build --release)")
    s = Server(tmp_path / "server")
    s.start()
    try:
        s.cli("datasets", "add", DATASET, str(cifar.folder))
        yield s
    finally:
        s.stop()
