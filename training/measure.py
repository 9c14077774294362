"""Measures the zoo independently of embedeval (numpy, scikit-learn and
onnxruntime-python): uniformity and tolerance as ../shared/DESIGN.md defines
them, on the digits test split, plus kNN and linear accuracy; then the trends
over tau. Prints a markdown table for training/README.md.

Uniformity loss (Wang & Isola 2020): log mean_{i != j} exp(-2 ||z_i - z_j||^2).
Tolerance (Wang & Liu 2021, Eq. 11): mean z_i^T z_j over distinct same-label pairs.
"""
import json
import pathlib

import numpy as np
import onnxruntime as ort
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

ROOT = pathlib.Path(__file__).resolve().parent.parent


def embed(model_dir: pathlib.Path, images: np.ndarray):
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    x = (images.astype(np.float32) / 16.0).transpose(0, 3, 1, 2)
    emb, feat = sess.run(["embedding", "features"], {"images": x})
    return emb.astype(np.float64), feat.astype(np.float64)


def normalise(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def uniformity(z):
    sq = np.clip(2.0 - 2.0 * z @ z.T, 0.0, None)
    n = len(z)
    off = ~np.eye(n, dtype=bool)
    return -np.log(np.exp(-2.0 * sq[off]).mean())


def tolerance(z, y):
    num, den = 0.0, 0.0
    for c in np.unique(y):
        zc = z[y == c]
        s = zc.sum(0)
        num += s @ s - len(zc)
        den += len(zc) * (len(zc) - 1)
    return num / den


def knn_top1(train_z, train_y, test_z, test_y, k=200, t=0.1):
    sim = test_z @ train_z.T
    k = min(k, len(train_z))
    idx = np.argsort(-sim, axis=1)[:, :k]
    classes = np.unique(np.concatenate([train_y, test_y]))
    votes = np.zeros((len(test_z), len(classes)))
    w = np.exp(np.take_along_axis(sim, idx, 1) / t)
    lab = np.searchsorted(classes, train_y[idx])
    for j in range(k):
        np.add.at(votes, (np.arange(len(test_z)), lab[:, j]), w[:, j])
    return (classes[votes.argmax(1)] == test_y).mean()


def linear_top1(train_f, train_y, test_f, test_y):
    sc = StandardScaler().fit(train_f)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(sc.transform(train_f), train_y)
    return clf.score(sc.transform(test_f), test_y)


def main():
    d = ROOT / "datasets" / "digits"
    tr_x, tr_y = np.load(d / "train_images.npy"), np.load(d / "train_labels.npy")
    te_x, te_y = np.load(d / "test_images.npy"), np.load(d / "test_labels.npy")
    rows = []
    for card in sorted((ROOT / "models").glob("*/model.toml")):
        m = card.parent
        text = card.read_text()
        loss = text.split('loss = "')[1].split('"')[0]
        tau = float(text.split("temperature = ")[1].split()[0])
        final = float(text.split("final_loss = ")[1].split()[0])
        te_e, _ = embed(m, te_x)
        tr_e, tr_f = embed(m, tr_x)
        _, te_f = embed(m, te_x)
        z, zt = normalise(te_e), normalise(tr_e)
        rows.append(dict(name=m.name, loss=loss, tau=tau, final_loss=final,
                         uniformity=uniformity(z), tolerance=tolerance(z, te_y),
                         knn=knn_top1(zt, tr_y, z, te_y), linear=linear_top1(tr_f, tr_y, te_f, te_y)))
    rows.sort(key=lambda r: (r["loss"], r["tau"]))
    print("| model | loss | tau | final training loss | uniformity | tolerance | kNN top-1 | linear top-1 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['loss']} | {r['tau']:g} | {r['final_loss']:.4f} | {r['uniformity']:.4f} | "
              f"{r['tolerance']:.4f} | {r['knn']:.4f} | {r['linear']:.4f} |")
    ordinary = [r for r in rows if r["loss"] == "infonce" and r["tau"] >= 0.1]
    taus = [r["tau"] for r in ordinary]
    rho_u = spearmanr(taus, [r["uniformity"] for r in ordinary]).statistic
    rho_t = spearmanr(taus, [r["tolerance"] for r in ordinary]).statistic
    print()
    print(f"ordinary loss, tau >= 0.1 ({len(ordinary)} models): Spearman rho(tau, uniformity) = {rho_u:.3f}, "
          f"rho(tau, tolerance) = {rho_t:.3f}")
    common = sorted({r["tau"] for r in rows if r["loss"] == "hard_infonce" and r["tau"] >= 0.2}
                    & {r["tau"] for r in ordinary})
    for loss in ("infonce", "hard_infonce"):
        u = [r["uniformity"] for r in rows if r["loss"] == loss and r["tau"] in common]
        print(f"{loss} at tau in {common}: uniformity range {max(u) - min(u):.4f}, std {np.std(u):.4f}")
    (ROOT / "training" / "measured.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
