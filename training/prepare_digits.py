"""Writes datasets/digits: the UCI handwritten digits as scikit-learn ships them,
in embedeval's own dataset format, with a fixed, seeded, stratified 70/30 split.

Format (embedeval-npy): dataset.toml (the manifest) plus, per split, a uint8
images .npy of shape [n, H, W, C] and an int64 labels .npy of shape [n].
"""
import argparse
import pathlib

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent.parent / "datasets" / "digits"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    images = digits.images.astype(np.uint8)[..., None]  # [1797, 8, 8, 1], values 0..16
    labels = digits.target.astype(np.int64)
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=0.3, stratify=labels, random_state=SEED)
    train_idx.sort()
    test_idx.sort()
    for split, ids in (("train", train_idx), ("test", test_idx)):
        np.save(out / f"{split}_images.npy", np.ascontiguousarray(images[ids]))
        np.save(out / f"{split}_labels.npy", labels[ids])

    (out / "dataset.toml").write_text(
        f"""# embedeval dataset manifest (format embedeval-npy).
name = "digits"
format = "embedeval-npy"
description = "UCI optical recognition of handwritten digits: 1,797 greyscale 8x8 images, 10 classes, pixel values 0..16"
source = "UCI Machine Learning Repository, Optical Recognition of Handwritten Digits (Alpaydin & Kaynak, 1998), as shipped by scikit-learn {sklearn.__version__} (sklearn.datasets.load_digits)"
license = "CC BY 4.0"
num_classes = 10
# One image: height, width, channels.
image_shape = [8, 8, 1]
# Largest pixel value (the model cards scale by 1/16).
pixel_max = 16
# sklearn.model_selection.train_test_split(test_size=0.3, stratify=labels, random_state={SEED})
split_seed = {SEED}

[splits.train]
images = "train_images.npy"
labels = "train_labels.npy"
size = {len(train_idx)}

[splits.test]
images = "test_images.npy"
labels = "test_labels.npy"
size = {len(test_idx)}
"""
    )
    print(f"wrote {out}: train {len(train_idx)}, test {len(test_idx)}")


if __name__ == "__main__":
    main()
