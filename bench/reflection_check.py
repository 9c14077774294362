"""Acceptance check of the evaluation service from a client that has no
.proto files: everything it calls is discovered through server reflection.

It runs Compare over every model on a dataset, fetches the same embeddings
through Embed (test and train splits; the embedding output and the backbone
features), recomputes uniformity, tolerance, the nearest-negative profile
(faiss-cpu IndexFlatIP), weighted kNN (numpy) and the linear probe
(scikit-learn) independently, and compares: closed-form metrics to 1e-4,
kNN exactly, linear within 1 point.

    python bench/reflection_check.py [--server 127.0.0.1:50051] [--dataset digits]

Exits non-zero on any disagreement. Uses the environment of bench/requirements.txt.
"""
import argparse
import sys

import faiss
import grpc
import numpy as np
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


class Reflected:
    """Calls methods of services found through reflection."""

    def __init__(self, channel):
        self.channel = channel
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))

    def cls(self, name):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(name))

    def method(self, service, name):
        m = self.pool.FindServiceByName(service).FindMethodByName(name)
        req, resp = message_factory.GetMessageClass(m.input_type), message_factory.GetMessageClass(m.output_type)
        path = f"/{service}/{name}"
        kind = self.channel.unary_stream if m.server_streaming else self.channel.unary_unary
        return req, kind(path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString)


def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def embed(r, model, dataset, split, output):
    req, call = r.method("embedeval.v1.EmbeddingService", "Embed")
    rows, labels = [], []
    for msg in call(req(model=model, dataset=dataset, split=split, output=output)):
        t = msg.embeddings
        rows.append(np.frombuffer(t.data, dtype="<f4").reshape(t.shape[0], t.shape[1]))
        labels.extend(msg.labels)
    return np.concatenate(rows).astype(np.float64), np.array(labels, dtype=np.int64)


def check(name, got, want, tol, failures):
    if abs(got - want) > tol:
        failures.append(f"{name}: service {got} vs independent {want}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="127.0.0.1:50051")
    ap.add_argument("--dataset", default="digits")
    args = ap.parse_args()
    r = Reflected(grpc.insecure_channel(args.server))
    req, compare = r.method("embedeval.v1.EvaluationService", "Compare")
    comparison = None
    for event in compare(req(dataset=args.dataset)):
        if event.HasField("comparison"):
            comparison = event.comparison
    failures = []
    print(f"{'model':20} {'uniformity':>10} {'tolerance':>10} {'nn1':>8} {'knn':>7} {'linear':>7}")
    for row in comparison.rows:
        spec = row.spec
        te, te_y = embed(r, row.model, args.dataset, "test", "")
        tr, tr_y = embed(r, row.model, args.dataset, "train", "")
        z, zt = normalise(te), normalise(tr)
        n = len(z)
        sq = np.clip(2 - 2 * z @ z.T, 0, None)
        off = ~np.eye(n, dtype=bool)
        uniformity = -np.log(np.exp(-spec.uniformity_t * sq[off]).mean())
        num = den = 0.0
        for c in np.unique(te_y):
            s = z[te_y == c].sum(0)
            m = (te_y == c).sum()
            num += s @ s - m
            den += m * (m - 1)
        tolerance = num / den
        index = faiss.IndexFlatIP(z.shape[1])
        index.add(z.astype(np.float32))
        k = spec.neighbors_k
        sims, ids = index.search(z.astype(np.float32), k + 1)
        nn = np.array([[s for s, i in zip(srow, irow) if i != a][:k] for a, (srow, irow) in enumerate(zip(sims, ids))])
        nn_mean = nn.mean(0)
        # Weighted kNN over the train bank.
        kk = min(spec.knn_k, len(zt))
        bank = faiss.IndexFlatIP(zt.shape[1])
        bank.add(zt.astype(np.float32))
        s_knn, i_knn = bank.search(z.astype(np.float32), kk)
        classes = np.unique(np.concatenate([tr_y, te_y]))
        lab = np.searchsorted(classes, tr_y)[i_knn]
        w = np.exp(s_knn / spec.knn_temperature)
        votes = np.stack([(w * (lab == c)).sum(1) for c in range(len(classes))], 1)
        knn = (classes[votes.argmax(1)] == te_y).mean()
        # Linear probe on the output the service names.
        out = row.linear.feature_output
        ftr, _ = embed(r, row.model, args.dataset, "train", out)
        fte, _ = embed(r, row.model, args.dataset, "test", out)
        sc = StandardScaler().fit(ftr)
        clf = LogisticRegression(C=row.linear.c, max_iter=2000).fit(sc.transform(ftr), tr_y)
        linear = clf.score(sc.transform(fte), te_y)

        check(f"{row.model} uniformity", row.uniformity, uniformity, 1e-4, failures)
        check(f"{row.model} tolerance", row.tolerance, tolerance, 1e-4, failures)
        for q in range(k):
            check(f"{row.model} nearest_negative[{q}]", row.nearest_negative_similarity[q], nn_mean[q], 1e-4, failures)
        check(f"{row.model} knn", row.knn.top1, knn, 1e-12, failures)
        check(f"{row.model} linear", row.linear.top1, linear, 0.01, failures)
        print(f"{row.model:20} {row.uniformity:10.4f} {row.tolerance:10.4f} {row.nearest_negative_similarity[0]:8.4f} "
              f"{row.knn.top1:7.4f} {row.linear.top1:7.4f}   independent: {uniformity:.4f} {tolerance:.4f} "
              f"{nn_mean[0]:.4f} {knn:.4f} {linear:.4f}")
    print(f"{len(comparison.rows)} models, {len(failures)} disagreements")
    for f in failures:
        print("  " + f)
    sys.exit(1 if failures or not comparison.rows else 0)


if __name__ == "__main__":
    main()
