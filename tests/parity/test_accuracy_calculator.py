"""The retrieval and clustering metrics of a release server against the
implementations the metric-learning literature cites, on the same embeddings:

- Precision@1, R-Precision and MAP@R, overall and per class, against
  pytorch-metric-learning's AccuracyCalculator (k="max_bin_count", its faiss
  k-NN over inner products of the L2-normalised rows: the cosine ranking the
  service uses), in both of its set-ups: the test split querying the train
  split, and the test split against itself with each query left out
  (ref_includes_query);
- Recall@K against a numpy count over the same ranking;
- the k-means objective against faiss-python's with the same seed and
  settings (within 1%), and NMI and AMI against scikit-learn's on faiss-python's
  assignment where it is the service's.

On the digits zoo (three models) and, where ../shared/data/cifar10-jpeg.tar.gz
is at hand, a CIFAR-10 model on a 2,000 + 2,000-image subset (200 images per
class from each split). Every number to 1e-6.

Run by `make test` in tests/parity/.venv (scripts/bootstrap makes it):

    EMBEDEVAL_BIN=target/release/embedeval tests/parity/.venv/bin/pytest tests/parity -q
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import faiss
import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import FaissKNN
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("EMBEDEVAL_BIN", REPO / "target" / "release" / "embedeval"))
CIFAR = Path(os.environ.get("EMBEDEVAL_CIFAR10_TAR", REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
TOL = 1e-6
DIGITS_MODELS = ["infonce-t0.07", "infonce-t0.2", "hard-infonce-t0.5"]
CIFAR_MODEL = "cifar10-infonce-t0.1"
PER_CLASS = 200
RECALL_KS = [1, 2, 4, 8, 16]
# Only the retrieval and clustering metrics (and the per-class table).
SKIPS = ["--skip-linear", "--skip-alignment", "--skip-uniformity", "--skip-penalty",
         "--skip-nearest-negatives", "--skip-effective-rank", "--skip-knn", "--skip-tolerance"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A release server of the zoo, gRPC only."""

    def __init__(self, tmp: Path) -> None:
        if not BIN.is_file():
            pytest.fail(f"no embedeval binary at {BIN} (set EMBEDEVAL_BIN)")
        self.tmp = tmp
        self.grpc = f"http://127.0.0.1:{_free_port()}"
        datasets = tmp / "datasets"
        datasets.mkdir()
        (datasets / "digits").symlink_to(REPO / "datasets" / "digits")
        self.log = tmp / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_")}
        env["EMBEDEVAL_LOG"] = "warn"
        cmd = [str(BIN), "serve", "--addr", self.grpc.removeprefix("http://"), "--http-addr", "off",
               "--models-dir", str(REPO / "models"), "--datasets-dir", str(datasets),
               "--data-dir", str(tmp / "data"), "--shutdown-grace", "1s"]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while self.cli("health", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not serve:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.25)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_")}
        done = subprocess.run([str(BIN), *args, "--server", self.grpc], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"embedeval {' '.join(args)}: {done.stderr}")
        return done

    def embeddings(self, model: str, dataset: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
        out = self.tmp / f"{model}-{dataset}-{split}.npy"
        self.cli("embed", model, "--dataset", dataset, "--split", split, "-o", str(out))
        return np.load(out).astype(np.float32), np.load(out.with_suffix(".labels.npy")).astype(np.int64)

    def report(self, model: str, dataset: str, gallery: str) -> Dict:
        done = self.cli("eval", model, "--dataset", dataset, "--retrieval-gallery", gallery,
                        "--recall-ks", ",".join(map(str, RECALL_KS)), *SKIPS, "--json")
        report = json.loads(done.stdout)
        assert report["status"] == "COMPLETED", report
        return report

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("parity"))
    try:
        yield s
    finally:
        s.stop()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _number(v: object) -> float:
    """A double of the JSON report ("NaN" is written as a string)."""
    return float(v)  # type: ignore[arg-type]


def _calculator(per_class: bool) -> AccuracyCalculator:
    return AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count", return_per_class=per_class, device=torch.device("cpu"),
        knn_func=FaissKNN(index_init_fn=faiss.IndexFlatIP))


def _recall_at(query: np.ndarray, query_y: np.ndarray, ref: np.ndarray, ref_y: np.ndarray,
               leave_out: bool) -> Dict[int, float]:
    """Recall@K over the faiss ranking, queries of an empty class left out."""
    k = max(RECALL_KS) + int(leave_out)
    index = faiss.IndexFlatIP(ref.shape[1])
    index.add(ref)
    _, ids = index.search(query, k)
    if leave_out:
        ids = np.array([[j for j in row if j != q][: k - 1] for q, row in enumerate(ids)])
    counts = {c: int((ref_y == c).sum()) - int(leave_out) for c in np.unique(query_y)}
    keep = np.array([counts[c] > 0 for c in query_y])
    hit = ref_y[ids] == query_y[:, None]
    return {kk: float(hit[keep, :kk].any(axis=1).mean()) for kk in RECALL_KS}


def _check(server: Server, model: str, dataset: str) -> List[str]:
    test, test_y = server.embeddings(model, dataset, "test")
    train, train_y = server.embeddings(model, dataset, "train")
    q, r = _unit(test), _unit(train)
    lines = []
    for gallery in ("train", "test"):
        report = server.report(model, dataset, gallery)
        got = report["retrieval"]
        assert got["gallery"] == gallery and report["spec"]["retrieval_gallery"] == gallery
        tq, tr = torch.from_numpy(q), torch.from_numpy(r)
        args = (tq, torch.from_numpy(test_y), tr, torch.from_numpy(train_y), False) if gallery == "train" \
            else (tq, torch.from_numpy(test_y))
        want = _calculator(False).get_accuracy(*args)
        pairs = [("precision_at_1", "precision_at_1"), ("r_precision", "r_precision"),
                 ("map_at_r", "mean_average_precision_at_r")]
        for ours, theirs in pairs:
            assert abs(_number(got[ours]) - want[theirs]) < TOL, \
                f"{model} {gallery}: {ours} {got[ours]} against AccuracyCalculator's {want[theirs]}"
        per_class = _calculator(True).get_accuracy(*args)
        pc = report["per_class"]
        for ours, theirs in (("map_at_r", "mean_average_precision_at_r"), ("r_precision", "r_precision")):
            for a, b in zip(pc[ours], per_class[theirs], strict=True):
                assert math.isclose(_number(a), b, abs_tol=TOL) or (math.isnan(_number(a)) and math.isnan(b)), \
                    f"{model} {gallery}: per-class {ours} {pc[ours]} against {per_class[theirs]}"
        recall = _recall_at(q, test_y, r if gallery == "train" else q, train_y if gallery == "train" else test_y,
                            gallery == "test")
        assert [int(x["k"]) for x in got["recall_at_k"]] == RECALL_KS
        for x in got["recall_at_k"]:
            assert abs(_number(x["recall"]) - recall[int(x["k"])]) < TOL, f"{model} {gallery}: recall {x}"
        lines.append(f"{model} on {dataset}, gallery {gallery}: MAP@R {_number(got['map_at_r']):.6f} "
                     f"(AccuracyCalculator {want['mean_average_precision_at_r']:.6f}), R-Precision "
                     f"{_number(got['r_precision']):.6f}, P@1 {_number(got['precision_at_1']):.6f}")

    # k-means: faiss-python with the same settings and seed, on the same rows.
    c = report["clustering"]
    k = len(np.unique(test_y))
    assert int(c["clusters"]) == k
    kmeans = faiss.Kmeans(q.shape[1], k, niter=int(c["iterations"]), nredo=int(c["restarts"]), seed=int(c["seed"]))
    kmeans.train(q)
    distances, assignment = kmeans.index.search(q, 1)
    objective = float(distances.sum())
    ours = _number(c["objective"])
    assert abs(ours - objective) <= 0.01 * objective, f"{model}: k-means objective {ours} against faiss's {objective}"
    nmi = normalized_mutual_info_score(test_y, assignment[:, 0])
    ami = adjusted_mutual_info_score(test_y, assignment[:, 0])
    if abs(ours - objective) <= 1e-4 * objective:
        # The same clustering: the same scores.
        assert abs(_number(c["nmi"]) - nmi) < TOL and abs(_number(c["ami"]) - ami) < TOL, (c, nmi, ami)
    lines.append(f"{model}: k-means objective {ours:.4f} (faiss-python {objective:.4f}), NMI {_number(c['nmi']):.6f} "
                 f"(scikit-learn on faiss-python's clusters {nmi:.6f}), AMI {_number(c['ami']):.6f} ({ami:.6f})")
    return lines


def test_exact_ties_are_broken_as_accuracy_calculator_breaks_them(server: Server) -> None:
    """Every image three times over (and its label with it): each query's
    ranking is full of exact ties (identical rows, identical similarities),
    broken by the smaller gallery row in the service and in
    AccuracyCalculator's default k-NN (faiss's IndexFlatL2 on the
    normalised rows: the same ties, the same order); each query leaves its
    own ranking by its row, its copies stay. Compared with
    AccuracyCalculator as it ships (its default knn_func)."""
    digits = REPO / "datasets" / "digits"
    dup = server.tmp / "digits-ties"
    dup.mkdir()
    for split, n in (("train", 200), ("test", 120)):
        images = np.load(digits / f"{split}_images.npy")[:n]
        labels = np.load(digits / f"{split}_labels.npy")[:n]
        # Interleaved copies, so that a tie spans rows far apart.
        np.save(dup / f"{split}_images.npy", np.concatenate([images, images[::-1], images]))
        np.save(dup / f"{split}_labels.npy", np.concatenate([labels, labels[::-1], labels]))
    manifest = (digits / "dataset.toml").read_text().replace('name = "digits"', 'name = "digits-ties"')
    manifest = manifest.replace("size = 1257", "size = 600").replace("size = 540", "size = 360")
    (dup / "dataset.toml").write_text(manifest)
    server.cli("datasets", "add", "digits-ties", str(dup))
    model = DIGITS_MODELS[0]
    test, test_y = server.embeddings(model, "digits-ties", "test")
    train, train_y = server.embeddings(model, "digits-ties", "train")
    q, r = _unit(test), _unit(train)
    calculator = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
                                    k="max_bin_count", device=torch.device("cpu"))
    for gallery in ("train", "test"):
        got = server.report(model, "digits-ties", gallery)["retrieval"]
        tq = torch.from_numpy(q)
        args = (tq, torch.from_numpy(test_y), torch.from_numpy(r), torch.from_numpy(train_y), False) \
            if gallery == "train" else (tq, torch.from_numpy(test_y))
        want = calculator.get_accuracy(*args)
        for ours, theirs in (("precision_at_1", "precision_at_1"), ("r_precision", "r_precision"),
                             ("map_at_r", "mean_average_precision_at_r")):
            assert abs(_number(got[ours]) - want[theirs]) < TOL, f"ties, {gallery}: {ours} {got[ours]} {want[theirs]}"
        print(f"exact ties, gallery {gallery}: MAP@R {_number(got['map_at_r']):.6f} "
              f"(AccuracyCalculator {want['mean_average_precision_at_r']:.6f})")


@pytest.mark.parametrize("model", DIGITS_MODELS)
def test_the_digits_zoo_equals_accuracy_calculator(server: Server, model: str) -> None:
    for line in _check(server, model, "digits"):
        print(line)


def test_a_cifar10_model_on_a_2000_image_subset_equals_accuracy_calculator(server: Server) -> None:
    if not CIFAR.is_file():
        print(f"\n*** SKIPPED: CIFAR-10 is not at hand ({CIFAR}): the CIFAR-10 parity was not checked ***")
        pytest.skip("CIFAR-10 archive absent")
    if not (REPO / "models" / CIFAR_MODEL).is_dir():
        pytest.fail(f"no {CIFAR_MODEL} in models/")
    subset = server.tmp / "cifar10-sub"
    with tarfile.open(CIFAR) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        by_class: Dict[Tuple[str, str], List[tarfile.TarInfo]] = {}
        for m in members:
            parts = Path(m.name).parts
            if len(parts) == 4 and parts[1] in ("train", "test"):
                by_class.setdefault((parts[1], parts[2]), []).append(m)
        for (split, label), files in by_class.items():
            dest = subset / split / label
            dest.mkdir(parents=True, exist_ok=True)
            for m in sorted(files, key=lambda m: m.name)[:PER_CLASS]:
                source = tar.extractfile(m)
                assert source is not None
                (dest / Path(m.name).name).write_bytes(source.read())
    assert len(by_class) == 20, sorted(by_class)
    server.cli("datasets", "add", "cifar10-parity", str(subset))
    for line in _check(server, CIFAR_MODEL, "cifar10-parity"):
        print(line)
    shutil.rmtree(subset)
