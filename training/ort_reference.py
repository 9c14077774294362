"""Writes tests/data/ort_python/: onnxruntime-python's outputs for one zoo
model on the whole digits test split, the independent reference that the
Embed tests compare embedeval's ONNX Runtime path against (to 1e-5)."""
import pathlib

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = "infonce-t0.5"


def main():
    out = ROOT / "tests" / "data" / "ort_python"
    out.mkdir(parents=True, exist_ok=True)
    images = np.load(ROOT / "datasets" / "digits" / "test_images.npy")
    x = (images.astype(np.float32) * np.float32(0.0625)).transpose(0, 3, 1, 2).copy()
    sess = ort.InferenceSession(str(ROOT / "models" / MODEL / "model.onnx"), providers=["CPUExecutionProvider"])
    emb, feat = sess.run(["embedding", "features"], {"images": x})
    np.save(out / f"{MODEL}.test.embedding.npy", emb.astype(np.float32))
    np.save(out / f"{MODEL}.test.features.npy", feat.astype(np.float32))
    print(f"onnxruntime {ort.__version__}: {emb.shape} {feat.shape} -> {out}")


if __name__ == "__main__":
    main()
