"""Writes a synthetic dataset in the CIFAR-10 binary format, for the
end-to-end benchmark (bench/e2e/run.py).

    make_cifar.py OUT_DIR [--train 10000] [--test 2000] [--seed 0]

OUT_DIR gets data_batch_1.bin ... data_batch_5.bin (train / 5 records each)
and test_batch.bin (test records). A record is 1 label byte (0-9) and 3,072
pixel bytes: the R, G and B planes, each 32x32 row-major, as CIFAR-10 ships
them. Images have class structure, so that a random encoder's kNN and linear
probe score above chance: each class has its own mean colour and a striped
pattern of its own orientation and frequency, and every image its own
brightness, phase and Gaussian pixel noise. Deterministic for a given seed.
"""
import argparse
import pathlib

import numpy as np

CLASSES, SIZE = 10, 32


def class_params(rng):
    colours = rng.uniform(88, 168, size=(CLASSES, 3))
    angles = rng.uniform(0, np.pi, size=CLASSES)
    freqs = rng.uniform(0.15, 0.6, size=CLASSES)
    amps = rng.uniform(10, 30, size=(CLASSES, 3))
    return colours, angles, freqs, amps


def images(rng, labels, params, chunk=2048):
    """uint8 [n, 3, 32, 32] for `labels`."""
    colours, angles, freqs, amps = params
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    out = np.empty((len(labels), 3, SIZE, SIZE), dtype=np.uint8)
    for start in range(0, len(labels), chunk):
        y = labels[start:start + chunk]
        n = len(y)
        phase = rng.uniform(0, 2 * np.pi, size=n).astype(np.float32)
        angle = (angles[y] + rng.normal(0, 0.3, size=n)).astype(np.float32)
        proj = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
        stripes = np.sin(freqs[y].astype(np.float32)[:, None, None] * proj + phase[:, None, None])
        brightness = rng.normal(0, 25, size=(n, 1, 1, 1))
        img = (colours[y][:, :, None, None] + brightness
               + amps[y][:, :, None, None] * stripes[:, None]
               + rng.normal(0, 50, size=(n, 3, SIZE, SIZE)))
        out[start:start + n] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def records(labels, pixels):
    """CIFAR-10 records: label byte then the R, G, B planes."""
    rec = np.empty((len(labels), 1 + 3 * SIZE * SIZE), dtype=np.uint8)
    rec[:, 0] = labels
    rec[:, 1:] = pixels.reshape(len(labels), -1)
    return rec.tobytes()


def write(out, train, test, seed=0):
    if train % 5 or train <= 0 or test <= 0:
        raise SystemExit("--train must be a positive multiple of 5 and --test positive")
    rng = np.random.default_rng(seed)
    params = class_params(rng)
    out.mkdir(parents=True, exist_ok=True)
    per = train // 5
    for b in range(5):
        y = rng.integers(0, CLASSES, size=per).astype(np.uint8)
        (out / f"data_batch_{b + 1}.bin").write_bytes(records(y, images(rng, y, params)))
    y = rng.integers(0, CLASSES, size=test).astype(np.uint8)
    (out / "test_batch.bin").write_bytes(records(y, images(rng, y, params)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    write(args.out, args.train, args.test, args.seed)
    print(f"{args.out}: {args.train} train in 5 batches, {args.test} test")


if __name__ == "__main__":
    main()
