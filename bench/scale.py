"""Memory and speed of a whole evaluation at ImageNet scale, server included.

For each case, clustered synthetic embeddings are written to ``.npy`` files
(a block at a time, so that neither this script nor its baselines ever hold
a whole array they do not need), a fresh ``embedeval serve`` is started on
a free local port with empty models, datasets and data folders, and the
files are sent through the Python client's ``evaluate_embeddings``
(memory-mapped, streamed chunk by chunk): weighted kNN (k = 200, T = 0.1),
the linear probe on a stratified fraction of the train rows, uniformity
(sampled above 50,000 test rows, the default) and the other test-split
metrics; no alignment (no positive views are sent). The server keeps its
default upload limit, derived from the memory available
(EMBEDEVAL_MAX_DATASET_BYTES is not passed on). Once the server has
stopped, the same files go through the baselines, each in a process of its
own so that its peak memory is its own and the server and a baseline never
hold the data at once:

* sgemm: one float32 matrix product of the kNN's shape, test x train^T,
  through numpy's BLAS, the train rows read from the memory-mapped file
  65,536 at a time (only the products are timed);
* faiss: faiss-cpu's exact IndexFlatIP on the L2-normalised rows (it copies
  the bank) plus the same weighted vote (k = 200, T = 0.1) in numpy;
* sklearn: StandardScaler + LogisticRegression (lbfgs, multinomial, C = 1,
  tol = 1e-4, the server's max_iter) on exactly the rows the server fitted
  (the subset rule of MetricSpec.linear_train_fraction rebuilt here),
  skipped when rows x dims x classes exceeds 5e10.

Run it with the benchmarks' environment (``python3 -m venv bench/.venv &&
bench/.venv/bin/pip install -r bench/requirements.txt``) and a release build::

    bench/.venv/bin/python bench/scale.py --bin target/release/embedeval
    bench/.venv/bin/python bench/scale.py --bin target/release/embedeval --cases table,imagenet --json scale.json
    bench/.venv/bin/python bench/scale.py --bin target/debug/embedeval --small

Cases (``--cases``, default ``table``; ``--small`` for a quick check):

* small: train 20,000 x 64, test 2,000, 10 classes;
* table: (a) train 500,000 x 128, test 10,000, 100 classes and (b) train
  200,000 x 2,048, test 2,000, 100 classes;
* imagenet: train 1,281,167 x 2,048 (10.5 GB of float32), test 2,000, 1,000
  classes. Its probe is capped at 5 L-BFGS iterations so that the case
  runs in minutes: its figure is the time per iteration, not the accuracy.
  It needs about 11 GB of free disk in ``--work`` and, for the server, about
  1.25 x 10.5 GB + 256 MiB of memory available; its faiss baseline copies
  the bank (10.5 GB) too, with the server stopped.

The probe is fitted on 10% of the train rows in every case. The data files
(``--work``, default a folder under /tmp) are kept and reused by later runs
with the same settings.

The figures of each case's table:

* wall: seconds of the ``evaluate_embeddings`` call, upload included; the
  line under the table gives the report's timings, the seconds of each of
  the server's stages ("total" is all of them);
* server peak RSS: the server process's VmHWM (/proc/<pid>/status) read
  right after the call returns; payload: the bytes of the train and test
  float32 values; peak / payload, and whether the peak is within
  1.25 x payload + 256 MiB (the bound the server's upload limit assumes);
* client peak RSS: this script's own peak (ru_maxrss), the client's
  streaming included;
* kNN stage: the server's "knn" seconds; sgemm and faiss + vote: the
  baselines' seconds; kNN / sgemm: how far the kNN is from the bare product
  of its shape; faiss / kNN: how many times faster the server's kNN is than
  faiss + vote (above 1: faster);
* kNN top-1: the server's and faiss's (they agree to a fraction of a point:
  the data are the same, only near-ties may differ);
* probe train rows: the server's and the rule's rebuilt here (they match);
* probe top-1: the server's and scikit-learn's on the same rows, and the
  difference in points; probe s / iteration, iterations and seconds: the
  server's L-BFGS (the "linear" stage) and scikit-learn's fit (scaling
  included);
* baseline peak RSS: the peak of each baseline's process.

``--json OUT`` writes every number, per case, to OUT.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

# The server and the baselines are started while a gRPC channel may be
# open; gRPC's fork handlers must be off before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "clients" / "python" / "src"))
sys.path.insert(0, str(REPO / "bench"))

import machine as where  # noqa: E402

#: The kNN's k and vote temperature.
K, T = 200, 0.1
#: The probe's C and gradient tolerance (the server's defaults).
C, TOL = 1.0, 1e-4
#: Seed of the probe's train subset, and of the data.
SUBSET_SEED, DATA_SEED = 0, 0
#: The server's memory bound: peak <= PAYLOAD_FACTOR x payload + PAYLOAD_SLACK.
PAYLOAD_FACTOR, PAYLOAD_SLACK = 1.25, 256 << 20
#: scikit-learn's probe is skipped above this many rows x dims x classes.
SKLEARN_MAX_WORK = 5e10
#: Train rows the baselines read from the memory-mapped file at a time.
BANK_BLOCK = 65_536
#: Bytes of one block of generated rows.
GENERATE_BLOCK_BYTES = 64 << 20
MIB, GIB = 1 << 20, 1 << 30


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark case: the data's shape and the probe's settings."""

    name: str
    train_rows: int
    test_rows: int
    dim: int
    classes: int
    #: Standard deviation of the noise around each class centre (the
    #: centres are N(0, 1)): chosen so that kNN top-1 is well between
    #: chance and 1.
    sigma: float
    #: The probe's linear_train_fraction and linear_max_iter.
    fraction: float
    max_iter: int
    note: str = ""

    @property
    def payload_bytes(self) -> int:
        return (self.train_rows + self.test_rows) * self.dim * 4

    @property
    def probe_rows(self) -> int:
        """Roughly the rows the probe is fitted on."""
        return max(self.classes, round(self.fraction * self.train_rows))

    @property
    def sklearn_work(self) -> float:
        return float(self.probe_rows) * self.dim * self.classes


SMALL = Case("small", 20_000, 2_000, 64, 10, sigma=4.0, fraction=0.1, max_iter=100)
CASES: Dict[str, List[Case]] = {
    "small": [SMALL],
    "table": [
        Case("table-a", 500_000, 10_000, 128, 100, sigma=3.5, fraction=0.1, max_iter=100),
        Case("table-b", 200_000, 2_000, 2_048, 100, sigma=10.0, fraction=0.1, max_iter=100),
    ],
    "imagenet": [
        Case(
            "imagenet", 1_281_167, 2_000, 2_048, 1_000, sigma=7.5, fraction=0.1, max_iter=5,
            note="the probe's iterations are capped at 5 so that the case runs in minutes: "
                 "its figure is the time per iteration, not the accuracy",
        ),
    ],
}
ALL_CASES = {c.name: c for cases in CASES.values() for c in cases}


# -- data ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Files:
    """The .npy files of a case."""

    folder: Path

    @property
    def train_x(self) -> Path:
        return self.folder / "train_x.npy"

    @property
    def train_y(self) -> Path:
        return self.folder / "train_y.npy"

    @property
    def test_x(self) -> Path:
        return self.folder / "test_x.npy"

    @property
    def test_y(self) -> Path:
        return self.folder / "test_y.npy"

    @property
    def meta(self) -> Path:
        return self.folder / "meta.json"


def _meta(case: Case) -> Dict[str, Any]:
    """What the files of `case` depend on: reused only while it is the same."""
    return dict(
        train_rows=case.train_rows, test_rows=case.test_rows, dim=case.dim, classes=case.classes,
        sigma=case.sigma, seed=DATA_SEED, generator="centres N(0,1), rows centre + N(0, sigma^2)",
    )


def _have(files: Files, case: Case) -> bool:
    """Whether the files of `case` are all there, with the right shapes."""
    try:
        if json.loads(files.meta.read_text()) != _meta(case):
            return False
        shapes = {
            files.train_x: ((case.train_rows, case.dim), np.float32),
            files.train_y: ((case.train_rows,), np.int64),
            files.test_x: ((case.test_rows, case.dim), np.float32),
            files.test_y: ((case.test_rows,), np.int64),
        }
        for path, (shape, dtype) in shapes.items():
            a = np.load(path, mmap_mode="r")
            if a.shape != shape or a.dtype != dtype:
                return False
        return True
    except (OSError, ValueError):
        return False


def _write_split(x_path: Path, y_path: Path, rows: int, centres: np.ndarray, sigma: float,
                 rng: np.random.Generator) -> None:
    """`rows` rows, each the centre of a random class plus N(0, sigma^2)
    noise, written a block at a time."""
    classes, dim = centres.shape
    x = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.float32, shape=(rows, dim))
    y = np.lib.format.open_memmap(y_path, mode="w+", dtype=np.int64, shape=(rows,))
    block = max(1, GENERATE_BLOCK_BYTES // (dim * 4))
    for start in range(0, rows, block):
        n = min(block, rows - start)
        labels = rng.integers(classes, size=n)
        noise = rng.standard_normal((n, dim), dtype=np.float32)
        noise *= np.float32(sigma)
        noise += centres[labels]
        x[start:start + n] = noise
        y[start:start + n] = labels
    x.flush()
    y.flush()
    del x, y


def ensure_data(case: Case, work: Path) -> Files:
    """The files of `case` under `work`, written unless they are there
    already. SystemExit when the disk is short."""
    files = Files(work / case.name)
    if _have(files, case):
        print(f"[{case.name}] reusing the data in {files.folder}", flush=True)
        return files
    files.folder.mkdir(parents=True, exist_ok=True)
    need = case.payload_bytes + (case.train_rows + case.test_rows) * 8
    free = shutil.disk_usage(files.folder).free
    if free < need + GIB:
        raise SystemExit(
            f"[{case.name}] needs {need / GIB:.1f} GiB of disk for its data (and 1 GiB to spare), "
            f"but {files.folder} has {free / GIB:.1f} GiB free: choose another --work"
        )
    print(f"[{case.name}] writing {need / GIB:.2f} GiB of data to {files.folder}", flush=True)
    start = time.perf_counter()
    files.meta.unlink(missing_ok=True)
    seeds = np.random.SeedSequence([DATA_SEED, case.train_rows, case.dim, case.classes]).spawn(3)
    centres = np.random.default_rng(seeds[0]).standard_normal((case.classes, case.dim), dtype=np.float32)
    _write_split(files.train_x, files.train_y, case.train_rows, centres, case.sigma, np.random.default_rng(seeds[1]))
    _write_split(files.test_x, files.test_y, case.test_rows, centres, case.sigma, np.random.default_rng(seeds[2]))
    files.meta.write_text(json.dumps(_meta(case), indent=1) + "\n")
    print(f"[{case.name}] written in {time.perf_counter() - start:.1f} s", flush=True)
    return files


# -- the probe's subset -------------------------------------------------------


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The first output of a SplitMix64 generator seeded with each of `x`
    (uint64 arithmetic, wrapping)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def stratified_rows(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The train rows the probe is fitted on, ascending (the rule of
    MetricSpec.linear_train_fraction): each class keeps max(1, floor(fraction
    x its rows + 0.5)) rows, those with the smallest keys
    splitmix64(splitmix64(seed) XOR row), ties the smaller row."""
    labels = np.asarray(labels)
    n = len(labels)
    if fraction >= 1.0:
        return np.arange(n)
    rows = np.arange(n, dtype=np.uint64)
    keys = splitmix64(splitmix64(np.array([seed], dtype=np.uint64))[0] ^ rows)
    order = np.lexsort((rows, keys, labels))  # by label, then key, then row
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    keep = np.maximum(1, np.floor(fraction * counts + 0.5).astype(np.int64))
    which = np.repeat(np.arange(len(counts)), counts)
    rank = np.arange(n) - starts[which]
    return np.sort(order[rank < keep[which]])


# -- the server ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss(pid: int) -> int:
    """The peak resident size of process `pid` (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def _self_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_available() -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Server:
    """``embedeval serve`` on a free local port with empty folders, until
    :meth:`stop`."""

    def __init__(self, binary: Path, folder: Path) -> None:
        self.port = _free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        dirs = {name: folder / name for name in ("models", "datasets", "data")}
        for d in dirs.values():
            d.mkdir()
        env = dict(os.environ)
        env.setdefault("EMBEDEVAL_LOG", "warn")
        for var in ("EMBEDEVAL_AUTH_TOKEN_FILE", "EMBEDEVAL_TLS_CERT", "EMBEDEVAL_TLS_KEY",
                    "EMBEDEVAL_DATABASE_URL", "EMBEDEVAL_ADDR", "EMBEDEVAL_SERVER", "EMBEDEVAL_CA_CERT",
                    "EMBEDEVAL_MAX_DATASET_BYTES"):
            env.pop(var, None)
        cmd = [
            str(binary), "serve",
            "--addr", self.url,
            "--models-dir", str(dirs["models"]),
            "--datasets-dir", str(dirs["datasets"]),
            "--data-dir", str(dirs["data"]),
            "--shutdown-grace", "1s",
        ]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait(binary, env)

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def _wait(self, binary: Path, env: Dict[str, str], seconds: float = 90) -> None:
        """Until the server's health service answers SERVING."""
        health = [str(binary), "health", "--server", f"http://{self.url}", "--timeout", "2"]
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self._log_tail()}")
            ok = subprocess.run(health, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
            if ok:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server was not SERVING after {seconds:.0f} s:\n{self._log_tail()}")
            time.sleep(0.25)

    @property
    def peak_rss(self) -> int:
        return _peak_rss(self.process.pid)

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 30 s)."""
        p = self.process
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)


def metric_spec(case: Case) -> Dict[str, Any]:
    """The MetricSpec fields of `case`: kNN k = 200, T = 0.1, the probe on
    `fraction` of the train rows with at most `max_iter` iterations, the
    rest the server's defaults."""
    return dict(knn_k=K, knn_temperature=T, linear_c=C, linear_tol=TOL, linear_max_iter=case.max_iter,
                linear_train_fraction=case.fraction, linear_train_seed=SUBSET_SEED)


def run_server(case: Case, files: Files, binary: Path) -> Dict[str, Any]:
    """One evaluation of `case` by a fresh server: its numbers."""
    import embedeval

    available = _memory_available()
    bound = PAYLOAD_FACTOR * case.payload_bytes + PAYLOAD_SLACK
    if available is not None and available < bound:
        print(f"[{case.name}] warning: {available / GIB:.1f} GiB of memory available, the server's upload "
              f"limit needs {bound / GIB:.1f} GiB for this payload: it may refuse it", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"embedeval-scale-{case.name}-") as tmp:
        server = Server(binary, Path(tmp))
        try:
            with embedeval.Client(server.url, timeout=None) as client:
                print(f"[{case.name}] evaluating on the server ({server.url})", flush=True)
                start = time.perf_counter()
                report = client.evaluate_embeddings(
                    train=(str(files.train_x), str(files.train_y)),
                    test=(str(files.test_x), str(files.test_y)),
                    spec=metric_spec(case),
                    name=f"scale-{case.name}",
                )
                wall = time.perf_counter() - start
                peak = server.peak_rss
                client_peak = _self_peak_rss()
        except BaseException:
            server.stop()
            print(f"[{case.name}] server log:\n{server._log_tail()}", file=sys.stderr)
            raise
        server.stop()
    knn, linear = report.knn, report.linear
    return dict(
        wall_seconds=wall,
        timings=dict(report.timings),
        peak_rss_bytes=peak,
        client_peak_rss_bytes=client_peak,
        num_train=report.num_train,
        num_test=report.num_test,
        uniformity_estimator=report.uniformity_estimator,
        knn_top1=knn.top1 if knn else None,
        linear_top1=linear.top1 if linear else None,
        linear_iterations=linear.iterations if linear else None,
        linear_converged=linear.converged if linear else None,
        linear_train_rows=linear.train_rows if linear else None,
        linear_seconds_per_iteration=linear.seconds_per_iteration if linear else None,
    )


# -- baselines (each in a process of its own) ---------------------------------


def _train_blocks(train: np.ndarray):
    """(start, rows) of the memory-mapped `train`, BANK_BLOCK rows at a time,
    each copied into memory (a writable array of its own)."""
    for start in range(0, train.shape[0], BANK_BLOCK):
        yield start, np.array(train[start:start + BANK_BLOCK], dtype=np.float32, order="C")


def baseline_sgemm(case: Case, files: Files) -> Dict[str, Any]:
    """test x train^T in float32 through numpy's BLAS, a block of train rows
    at a time and, within it, a block of queries at a time (products of at
    most 256 MiB). Only the products are timed."""
    train = np.load(files.train_x, mmap_mode="r")
    test = np.ascontiguousarray(np.load(files.test_x), dtype=np.float32)
    queries = max(1, (256 * MIB) // (4 * BANK_BLOCK))
    buffer = np.empty(min(queries, len(test)) * BANK_BLOCK, dtype=np.float32)
    seconds = 0.0
    for _, bank in _train_blocks(train):
        bank_t = bank.T
        for q in range(0, len(test), queries):
            block = test[q:q + queries]
            out = buffer[:len(block) * len(bank)].reshape(len(block), len(bank))
            start = time.perf_counter()
            np.dot(block, bank_t, out=out)
            seconds += time.perf_counter() - start
    flop = 2.0 * len(test) * train.shape[0] * train.shape[1]
    return dict(sgemm_seconds=seconds, sgemm_gflops=flop / seconds / 1e9)


def baseline_faiss(case: Case, files: Files) -> Dict[str, Any]:
    """faiss-cpu's IndexFlatIP over the L2-normalised bank (normalising and
    adding timed, reading the file not), its top-k search and the weighted
    vote (k = 200, T = 0.1) in numpy."""
    import faiss

    train = np.load(files.train_x, mmap_mode="r")
    train_y = np.load(files.train_y)
    test = np.ascontiguousarray(np.load(files.test_x), dtype=np.float32)
    test_y = np.load(files.test_y)
    index = faiss.IndexFlatIP(train.shape[1])
    add = 0.0
    for _, bank in _train_blocks(train):
        start = time.perf_counter()
        faiss.normalize_L2(bank)
        index.add(bank)
        add += time.perf_counter() - start
    start = time.perf_counter()
    faiss.normalize_L2(test)
    k = min(K, train.shape[0])
    sims, ids = index.search(test, k)
    search = time.perf_counter() - start
    start = time.perf_counter()
    classes = np.unique(np.concatenate([train_y, test_y]))
    labels = np.searchsorted(classes, train_y)[ids]
    scores = np.zeros((len(test), len(classes)))
    np.add.at(scores, (np.arange(len(test))[:, None], labels), np.exp(sims.astype(np.float64) / T))
    top1 = float((scores.argmax(1) == np.searchsorted(classes, test_y)).mean())
    vote = time.perf_counter() - start
    return dict(faiss_seconds=add + search + vote, faiss_add_seconds=add, faiss_search_seconds=search,
                faiss_vote_seconds=vote, faiss_top1=top1, faiss_threads=faiss.omp_get_max_threads(),
                faiss_version=faiss.__version__)


def baseline_sklearn(case: Case, files: Files) -> Dict[str, Any]:
    """StandardScaler + LogisticRegression (lbfgs, multinomial, C = 1,
    tol = 1e-4, the server's max_iter) on the server's subset of the train
    rows, in float64 as the server's probe."""
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_y = np.load(files.train_y)
    rows = stratified_rows(train_y, case.fraction, SUBSET_SEED)
    x = np.asarray(np.load(files.train_x, mmap_mode="r")[rows], dtype=np.float64)
    y = train_y[rows]
    test = np.asarray(np.load(files.test_x), dtype=np.float64)
    test_y = np.load(files.test_y)
    start = time.perf_counter()
    scaler = StandardScaler().fit(x)
    x = scaler.transform(x)
    probe = LogisticRegression(C=C, max_iter=case.max_iter, tol=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(x, y)
    seconds = time.perf_counter() - start
    iterations = int(np.max(probe.n_iter_))
    top1 = float(probe.score(scaler.transform(test), test_y))
    return dict(sklearn_rows=int(len(rows)), sklearn_top1=top1, sklearn_seconds=seconds,
                sklearn_iterations=iterations, sklearn_seconds_per_iteration=seconds / max(1, iterations),
                sklearn_version=sklearn.__version__)


BASELINES = {"sgemm": baseline_sgemm, "faiss": baseline_faiss, "sklearn": baseline_sklearn}


def _baseline_main(kind: str, case_name: str, folder: Path) -> None:
    """A baseline in this process: prints its numbers as one JSON line."""
    out = BASELINES[kind](ALL_CASES[case_name], Files(folder))
    out[f"{kind}_peak_rss_bytes"] = _self_peak_rss()
    print(json.dumps(out))


def run_baselines(case: Case, files: Files) -> Dict[str, Any]:
    """Each baseline in a process of its own, one after the other."""
    out: Dict[str, Any] = {}
    for kind in BASELINES:
        if kind == "sklearn" and case.sklearn_work > SKLEARN_MAX_WORK:
            out["sklearn_skipped"] = (
                f"rows x dims x classes = {case.sklearn_work:.2g} > {SKLEARN_MAX_WORK:.0e}: "
                "too long for scikit-learn"
            )
            print(f"[{case.name}] scikit-learn skipped: {out['sklearn_skipped']}", flush=True)
            continue
        print(f"[{case.name}] baseline: {kind}", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--baseline", kind, "--case-name", case.name,
               "--case-dir", str(files.folder)]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            out[f"{kind}_failed"] = f"exit status {done.returncode}"
            print(f"[{case.name}] baseline {kind} failed with exit status {done.returncode}", flush=True)
            continue
        out.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


# -- the report -----------------------------------------------------------------


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def derive(case: Case, server: Dict[str, Any], base: Dict[str, Any], subset_rows: int) -> Dict[str, Any]:
    """The figures computed from the measurements."""
    payload = case.payload_bytes
    peak = server["peak_rss_bytes"]
    bound = PAYLOAD_FACTOR * payload + PAYLOAD_SLACK
    knn = server["timings"].get("knn")
    diff = None
    if server["linear_top1"] is not None and base.get("sklearn_top1") is not None:
        diff = 100.0 * (server["linear_top1"] - base["sklearn_top1"])
    return dict(
        payload_bytes=payload,
        peak_over_payload=peak / payload,
        peak_bound_bytes=bound,
        peak_within_bound=peak <= bound,
        knn_over_sgemm=_ratio(knn, base.get("sgemm_seconds")),
        faiss_over_knn=_ratio(base.get("faiss_seconds"), knn),
        probe_top1_difference_points=diff,
        subset_rows=subset_rows,
        subset_rows_match=server["linear_train_rows"] == subset_rows,
    )


def _num(value: Optional[float], fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


def _gib(value: Optional[float]) -> str:
    return "-" if value is None else f"{value / GIB:.2f} GiB"


def print_table(case: Case, r: Dict[str, Any]) -> None:
    s, b, d = r["server"], r["baselines"], r["derived"]
    knn = s["timings"].get("knn")
    sk = b.get("sklearn_skipped") or ("failed" if "sklearn_failed" in b else None)
    rows = [
        ("wall, evaluate_embeddings", f"{s['wall_seconds']:.2f} s"),
        ("server peak RSS (VmHWM)", _gib(s["peak_rss_bytes"])),
        ("payload (train + test float32)", _gib(d["payload_bytes"])),
        ("peak / payload", f"{d['peak_over_payload']:.3f}"),
        ("peak <= 1.25 x payload + 256 MiB", f"{'yes' if d['peak_within_bound'] else 'NO'} "
                                             f"(bound {_gib(d['peak_bound_bytes'])})"),
        ("client peak RSS", _gib(s["client_peak_rss_bytes"])),
        ("kNN stage", f"{_num(knn)} s"),
        ("sgemm (test x train^T)", f"{_num(b.get('sgemm_seconds'))} s ({_num(b.get('sgemm_gflops'), '{:.0f}')} GFLOP/s)"),
        ("faiss IndexFlatIP + vote", f"{_num(b.get('faiss_seconds'))} s (add {_num(b.get('faiss_add_seconds'))}, "
                                     f"search {_num(b.get('faiss_search_seconds'))}, vote {_num(b.get('faiss_vote_seconds'))})"),
        ("kNN / sgemm", _num(d["knn_over_sgemm"], "{:.2f}")),
        ("faiss / kNN", _num(d["faiss_over_knn"], "{:.2f}")),
        ("kNN top-1: embedeval, faiss", f"{_num(s['knn_top1'], '{:.4f}')}, {_num(b.get('faiss_top1'), '{:.4f}')}"),
        ("probe train rows: server, rebuilt",
         f"{s['linear_train_rows']}, {d['subset_rows']} ({'match' if d['subset_rows_match'] else 'DIFFER'})"),
        ("probe top-1: embedeval, sklearn",
         f"{_num(s['linear_top1'], '{:.4f}')}, {sk or _num(b.get('sklearn_top1'), '{:.4f}')}"),
        ("probe top-1 difference", "-" if d["probe_top1_difference_points"] is None
         else f"{d['probe_top1_difference_points']:+.2f} points"),
        ("probe s / iteration: embedeval, sklearn",
         f"{_num(s['linear_seconds_per_iteration'], '{:.4f}')}, "
         f"{'-' if sk else _num(b.get('sklearn_seconds_per_iteration'), '{:.4f}')}"),
        ("probe iterations: embedeval, sklearn",
         f"{s['linear_iterations']}{'' if s['linear_converged'] else ' (not converged)'} of {case.max_iter}, "
         f"{'-' if sk else b.get('sklearn_iterations', '-')}"),
        ("probe seconds: embedeval, sklearn",
         f"{_num(s['timings'].get('linear'))}, {'-' if sk else _num(b.get('sklearn_seconds'))}"),
        ("baseline peak RSS: sgemm, faiss, sklearn",
         ", ".join(_gib(b.get(f"{k}_peak_rss_bytes")) for k in BASELINES)),
    ]
    print()
    print(f"### {case.name}: train {case.train_rows:,} x {case.dim:,}, test {case.test_rows:,}, "
          f"{case.classes:,} classes, probe on {case.fraction:.0%} of the train rows, at most {case.max_iter} iterations")
    if case.note:
        print(f"\nNote: {case.note}.")
    print()
    print("| figure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    stages = ", ".join(f"{k} {v:.3f}" for k, v in sorted(s["timings"].items(), key=lambda kv: -kv[1]))
    print(f"\nServer stages (s): {stages}; uniformity estimator: {s['uniformity_estimator'] or '-'}.")
    if sk:
        print(f"scikit-learn skipped: {sk}.")
    print(flush=True)


def machine() -> Dict[str, Any]:
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return dict(cpus=os.cpu_count(), memory_bytes=mem, platform=platform.platform(),
                python=platform.python_version(), numpy=np.__version__, **where.describe())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "embedeval",
                        help="the embedeval binary (default target/release/embedeval)")
    parser.add_argument("--cases", default="table", help="comma-separated: small, table, imagenet (default table)")
    parser.add_argument("--small", action="store_true", help="only the small case (a quick check)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "embedeval-scale",
                        help="folder of the data files, kept and reused (default /tmp/embedeval-scale)")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--baseline", choices=list(BASELINES), help=argparse.SUPPRESS)
    parser.add_argument("--case-name", help=argparse.SUPPRESS)
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.baseline:
        _baseline_main(args.baseline, args.case_name, args.case_dir)
        return

    names = ["small"] if args.small else [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}: choose among {', '.join(CASES)}")
    binary = args.bin if args.bin.is_absolute() else Path.cwd() / args.bin
    if not binary.is_file():
        parser.error(f"no embedeval binary at {binary} (build it: cargo build --release)")
    cases = [c for n in names for c in CASES[n]]
    print(where.line(), flush=True)

    results = []
    for case in cases:
        files = ensure_data(case, args.work)
        server = run_server(case, files, binary)
        base = run_baselines(case, files)
        subset = len(stratified_rows(np.load(files.train_y), case.fraction, SUBSET_SEED))
        result = dict(case=dataclasses.asdict(case), server=server, baselines=base,
                      derived=derive(case, server, base, subset))
        results.append(result)
        print_table(case, result)

    if args.json:
        out = dict(machine=machine(), k=K, temperature=T, c=C, tol=TOL, subset_seed=SUBSET_SEED, results=results)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
