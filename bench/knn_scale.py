"""Baselines of benches/knn_scale.rs on the same data (the .npy files it
writes in the folder given): one sgemm of the kNN's shape (queries x bank^T
through numpy/OpenBLAS, in blocks of queries so that the product fits in
memory) and faiss-cpu's IndexFlatIP search plus the InstDisc weighted vote
in numpy (k = 200, T = 0.1). Each the best of two runs. Prints one JSON
object."""
import json
import pathlib
import sys
import time

import faiss
import numpy as np

K, T = 200, 0.1


def sgemm(train, test, block=1000):
    out = np.empty((min(block, len(test)), len(train)), dtype=np.float32)
    start = time.perf_counter()
    for s in range(0, len(test), block):
        q = test[s:s + block]
        np.dot(q, train.T, out=out[:len(q)])
    return time.perf_counter() - start


def knn(train, train_y, test, test_y):
    start = time.perf_counter()
    index = faiss.IndexFlatIP(train.shape[1])
    index.add(train)
    sims, ids = index.search(test, K)
    classes = np.unique(np.concatenate([train_y, test_y]))
    labels = np.searchsorted(classes, train_y)[ids]
    weights = np.exp(sims / T)
    scores = np.zeros((len(test), len(classes)))
    np.add.at(scores, (np.arange(len(test))[:, None], labels), weights)
    top1 = (scores.argmax(1) == np.searchsorted(classes, test_y)).mean()
    return time.perf_counter() - start, float(top1)


def main():
    d = pathlib.Path(sys.argv[1])
    train, train_y = np.load(d / "train_x.npy"), np.load(d / "train_y.npy")
    test, test_y = np.load(d / "test_x.npy"), np.load(d / "test_y.npy")
    s = min(sgemm(train, test) for _ in range(2))
    f, top1 = min((knn(train, train_y, test, test_y) for _ in range(2)), key=lambda r: r[0])
    print(json.dumps(dict(sgemm_seconds=s, faiss_seconds=f, faiss_top1=top1,
                          faiss=faiss.__version__, threads=faiss.omp_get_max_threads())))


if __name__ == "__main__":
    main()
