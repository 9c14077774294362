"""Checks exported digits models with onnxruntime-python, independently of the
trainer: for each model folder, the card's onnx_sha256 is the sha256 of
model.onnx, and ONNX Runtime's outputs on the card's golden inputs (the first
`rows` images of the digits `split`, preprocessed as the card's [input] says)
equal the golden files the trainer wrote, to 1e-4 (the tolerance of
embedeval's own golden check). A folder named <name>-s<N> (or <name>-s<N>-e<EEE>) must have
`[training] seed = N`. Exits non-zero on any failure.

Usage: python training/check_golden.py sweeps/digits-seeds/*/   (default: sweeps/digits-seeds/*/)
"""
import hashlib
import pathlib
import re
import sys
import tomllib

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOL = 1e-4


def check(folder: pathlib.Path) -> list:
    card = tomllib.loads((folder / "model.toml").read_text())
    onnx_path = folder / "model.onnx"
    problems = []
    if hashlib.sha256(onnx_path.read_bytes()).hexdigest() != card["onnx_sha256"]:
        problems.append("onnx_sha256 differs from the card")
    m = re.search(r"-s(\d+)(?:-e\d+)?$", folder.name)
    seed = card["training"].get("seed", 0)
    if seed != (int(m.group(1)) if m else 0):
        problems.append(f"card seed {seed} does not match the folder name")
    g, inp = card["golden"], card["input"]
    images = np.load(ROOT / "datasets" / "digits" / f"{g['split']}_images.npy")[: g["rows"]]
    x = images.astype(np.float32) * np.float32(inp["scale"])
    x = (x - np.float32(inp["mean"][0])) / np.float32(inp["std"][0])
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = card["outputs"]
    got = dict(zip(["embedding", "features"], sess.run([outs["embedding"], outs["features"]], {inp["name"]: x})))
    diffs = {}
    for key in ("embedding", "features"):
        want = np.load(folder / g[key])
        if want.shape != got[key].shape:
            problems.append(f"{key}: shape {got[key].shape} vs golden {want.shape}")
            continue
        diffs[key] = float(np.abs(got[key] - want).max())
        if not diffs[key] <= TOL:
            problems.append(f"{key}: max abs diff {diffs[key]:.3g} > {TOL:g}")
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"{folder.name}: seed {seed}, final_loss {card['training']['final_loss']:.4f}, "
          f"max |ort - golden| embedding {diffs.get('embedding', float('nan')):.2e} "
          f"features {diffs.get('features', float('nan')):.2e}, {size} bytes"
          + ("" if not problems else "  FAIL: " + "; ".join(problems)))
    return problems


def main() -> None:
    folders = [pathlib.Path(a) for a in sys.argv[1:]] or sorted(
        p.parent for p in (ROOT / "sweeps" / "digits-seeds").glob("*/model.toml"))
    if not folders:
        sys.exit("no model folders to check")
    failed = sum(bool(check(f)) for f in folders)
    print(f"onnxruntime {ort.__version__}: {len(folders) - failed}/{len(folders)} models pass")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
