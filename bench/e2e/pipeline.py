"""The independent Python pipeline of the end-to-end benchmark: what one
would write without embedeval to evaluate an ONNX encoder on CIFAR batches.

    pipeline.py MODEL.onnx CIFAR_DIR [--batch 256] [--neighbors-k 10]

Reads data_batch_1..5.bin (train) and test_batch.bin (test), preprocesses
them as embedeval's "cifar10" preset does (x = (pixel / 255 - mean[c]) /
std[c], NCHW float32), runs the model with ONNX Runtime on the CPU (batch
256, ONNX Runtime's default threads), then on the L2-normalised test
embeddings (output "embedding"):

- uniformity_loss = log mean_{i<j} exp(-2 ||z_i - z_j||^2), exact over all
  pairs (numpy, float64, in row blocks); uniformity = -uniformity_loss;
- tolerance = mean z_i . z_j over distinct same-label pairs;
- nearest_negative_similarity[r] = mean over i of the (r+1)-th largest
  z_i . z_j, j != i (faiss IndexFlatIP, k = 10);
- kNN: InstDisc weighted vote over the L2-normalised train embeddings
  (faiss IndexFlatIP, k = 200, weights exp(s / 0.1)), top-1 and top-5;
- linear probe: StandardScaler (train statistics) then scikit-learn's lbfgs
  LogisticRegression (C = 1, max_iter 1000, tol 1e-4) on output "features",
  top-1 on test.

Prints one JSON object: every metric, seconds per stage and in total, and
the process's peak RSS (ru_maxrss) in MiB.
"""
import argparse
import json
import pathlib
import resource
import sys
import time

import faiss
import numpy as np
import onnxruntime as ort
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)
RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]


class Timer:
    def __init__(self):
        self.timings = {}

    def __call__(self, name, f, *args, **kw):
        start = time.perf_counter()
        out = f(*args, **kw)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        return out


def read_cifar(d, files):
    """uint8 pixels [n, 3, 32, 32] and int64 labels [n] from CIFAR-10 batches."""
    raw = np.concatenate([np.fromfile(d / f, dtype=np.uint8).reshape(-1, RECORD) for f in files])
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def preprocess(pixels):
    x = pixels.astype(np.float32) / np.float32(255.0)
    x -= MEAN[None, :, None, None]
    x /= STD[None, :, None, None]
    return x


def session(model):
    opts = ort.SessionOptions()  # default threads, all graph optimisations
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def encode(sess, x, batch):
    """The model's "embedding" and "features" outputs over x, `batch` rows a run."""
    emb, feat = [], []
    for start in range(0, len(x), batch):
        e, f = sess.run(["embedding", "features"], {"images": x[start:start + batch]})
        emb.append(e)
        feat.append(f)
    return np.concatenate(emb), np.concatenate(feat)


def normalize(z):
    z = np.ascontiguousarray(z, dtype=np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def uniformity_loss(z, t=2.0, block=1024):
    """log of the mean over distinct pairs of exp(-t ||z_i - z_j||^2); with
    unit rows ||z_i - z_j||^2 = 2 - 2 z_i . z_j. Exact, float64, row blocks."""
    z64 = z.astype(np.float64)
    sq = (z64 * z64).sum(1)
    n = len(z64)
    total = 0.0
    for start in range(0, n, block):
        g = z64[start:start + block] @ z64.T
        d2 = np.maximum(sq[start:start + block, None] + sq[None, :] - 2.0 * g, 0.0)
        e = np.exp(-t * d2)
        rows = np.arange(start, min(start + block, n))
        e[rows - start, rows] = 0.0  # drop i == j
        total += e.sum()
    return float(np.log(total / (n * (n - 1))))


def tolerance(z, labels):
    """Mean z_i . z_j over i != j with the same label: per class
    ||sum z||^2 - sum ||z||^2 over n_c (n_c - 1) pairs, pooled."""
    z64 = z.astype(np.float64)
    num = den = 0.0
    for c in np.unique(labels):
        zc = z64[labels == c]
        s = zc.sum(0)
        num += s @ s - (zc * zc).sum()
        den += len(zc) * (len(zc) - 1)
    return float(num / den)


def nearest_negatives(z, k=10):
    """Mean similarity of the 1st ... k-th nearest other test sample."""
    n = len(z)
    k = min(k, n - 1)
    index = faiss.IndexFlatIP(z.shape[1])
    index.add(z)
    sims, ids = index.search(z, k + 1)
    # Drop the anchor itself (rank 0 unless it has exact duplicates); when
    # the search did not return it, keep the first k.
    is_self = ids == np.arange(n)[:, None]
    skip = np.where(is_self.any(1), is_self.argmax(1), k)
    keep = np.arange(k + 1)[None, :] != skip[:, None]
    return sims[keep].reshape(n, k).astype(np.float64).mean(0).tolist()


def knn(bank, bank_y, test, test_y, k=200, t=0.1):
    """InstDisc weighted kNN (the code of bench/baselines.py)."""
    k = min(k, len(bank))
    index = faiss.IndexFlatIP(bank.shape[1])
    index.add(bank)
    sims, ids = index.search(test, k)
    classes = np.unique(np.concatenate([bank_y, test_y]))
    labels = np.searchsorted(classes, bank_y)[ids]
    weights = np.exp(sims / t)
    scores = np.stack([(weights * (labels == c)).sum(1) for c in range(len(classes))], 1)
    ranked = np.argsort(-scores, axis=1, kind="stable")
    truth = np.searchsorted(classes, test_y)
    top1 = (ranked[:, 0] == truth).mean()
    top5 = (ranked[:, :5] == truth[:, None]).any(1).mean()
    return dict(top1=float(top1), top5=float(top5), k=k, temperature=t)


def probe(train, train_y, test, test_y, c=1.0, max_iter=1000, tol=1e-4):
    """Standardised features, lbfgs logistic regression (bench/baselines.py)."""
    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(C=c, max_iter=max_iter, tol=tol).fit(scaler.transform(train), train_y)
    return dict(top1=float(clf.score(scaler.transform(test), test_y)),
                train_top1=float(clf.score(scaler.transform(train), train_y)),
                iterations=int(clf.n_iter_.max()), feature_output="features")


def run(model, data, batch=256, neighbors_k=10):
    started = time.perf_counter()
    tm = Timer()
    test_px, test_y = tm("read", read_cifar, data, TEST_FILES)
    train_px, train_y = tm("read", read_cifar, data, TRAIN_FILES)
    test_x = tm("preprocess", preprocess, test_px)
    train_x = tm("preprocess", preprocess, train_px)
    del test_px, train_px
    sess = tm("session", session, model)
    test_emb, test_feat = tm("encode_test", encode, sess, test_x, batch)
    train_emb, train_feat = tm("encode_train", encode, sess, train_x, batch)
    del test_x, train_x, sess
    z = tm("normalize", normalize, test_emb)
    bank = tm("normalize", normalize, train_emb)
    u = tm("uniformity", uniformity_loss, z)
    tol = tm("tolerance", tolerance, z, test_y)
    nn = tm("nearest_negatives", nearest_negatives, z, neighbors_k)
    kn = tm("knn", knn, bank, train_y, z, test_y)
    lin = tm("linear", probe, train_feat, train_y, test_feat, test_y)
    timings = dict(tm.timings)
    timings["total"] = time.perf_counter() - started
    # ru_maxrss is KiB on Linux.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return dict(
        uniformity=-u, uniformity_loss=u, tolerance=tol, nearest_negative_similarity=nn,
        knn=kn, linear=lin, num_test=len(z), num_train=len(bank), embedding_dim=int(z.shape[1]),
        feature_dim=int(train_feat.shape[1]), timings=timings, peak_rss_mib=peak_mib,
        versions=dict(onnxruntime=ort.__version__, faiss=faiss.__version__, numpy=np.__version__),
        threads=dict(faiss=faiss.omp_get_max_threads()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=pathlib.Path)
    ap.add_argument("data", type=pathlib.Path)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--neighbors-k", type=int, default=10)
    args = ap.parse_args()
    json.dump(run(args.model, args.data, args.batch, args.neighbors_k), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
