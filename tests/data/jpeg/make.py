#!/usr/bin/env python3
# Generator for tests/data/jpeg/: JPEG files of several kinds and the pixels
# Pillow decodes from them, which embedeval's JPEG decoder must give bit for
# bit (src/data/jpeg.rs, its tests, and tests/cifar10.rs).
#
# Deterministic: fixed seeds, no timestamps. Versions used to produce the
# committed files are recorded in pillow.txt (Python, numpy, Pillow and the
# libjpeg-turbo inside Pillow's wheel).
#
# Run:  python3 -m venv tests/data/.venv
#       tests/data/.venv/bin/pip install numpy pillow
#       tests/data/.venv/bin/python tests/data/jpeg/make.py [CIFAR10_TAR]
#
# Written here:
#   <name>.jpg                  the JPEG (made by Pillow from synthetic pixels)
#   <name>.rgb.npy              Image.open(p).convert("RGB"), uint8 [h, w, 3]
#   <name>.l.npy                Image.open(p).convert("L"),   uint8 [h, w]
#   digests.txt                 sha256 of Pillow's pixels ("rgb": convert("RGB"),
#                               "l": convert("L")) of every JPEG of a folder,
#                               files in sorted order, one line per folder:
#                               the pets fixture (tests/data/resnet2048/pets) and,
#                               where CIFAR10_TAR is given (default
#                               ../shared/data/cifar10-jpeg.tar.gz if present),
#                               each split/class of CIFAR-10's JPEG folder.
#                               CIFAR-10's images themselves are never committed.
#   folder/<split>/<class>/*.jpg  a 32 x 32 image folder of those kinds mixed
#   pillow/                     the same images as Pillow decodes them
#                               (convert("RGB")), an embedeval-npy dataset:
#                               tests/new_user.rs adds both and embeds both
#   pillow.txt                  the versions that made these files
import hashlib
import io
import os
import platform
import sys
import tarfile

import numpy as np
import PIL
from PIL import Image, ImageDraw, features

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PETS = os.path.join(ROOT, "tests", "data", "resnet2048", "pets")


def photo(w, h, seed):
    """Photo-like RGB pixels: a smooth colour field, saturated shapes with
    sharp edges (where chroma upsampling shows) and sensor-like noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.float64)
    img = Image.fromarray(field.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, w, size=2).tolist())
        y0, y1 = sorted(rng.integers(0, h, size=2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, 4)))
    pixels = np.asarray(img, dtype=np.float64) + rng.normal(0, 6, size=(h, w, 3))
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


# name: (width, height, seed, Pillow mode, save arguments)
CASES = {
    # CIFAR-10's own kind: 32 x 32, quality 75, chroma halved both ways.
    "cifar_420_32x32": (32, 32, 1, "RGB", dict(quality=75, subsampling="4:2:0")),
    "photo_444_67x45": (67, 45, 2, "RGB", dict(quality=90, subsampling="4:4:4")),
    "photo_422_50x33": (50, 33, 3, "RGB", dict(quality=85, subsampling="4:2:2")),
    "photo_420_101x77": (101, 77, 4, "RGB", dict(quality=80, subsampling="4:2:0")),
    "photo_420_240x160": (240, 160, 5, "RGB", dict(quality=92, subsampling="4:2:0")),
    "progressive_420_96x64": (96, 64, 6, "RGB",
                              dict(quality=75, subsampling="4:2:0", progressive=True)),
    "progressive_444_45x61": (45, 61, 7, "RGB",
                              dict(quality=95, subsampling="4:4:4", progressive=True,
                                   optimize=True)),
    # An RGB JPEG (Adobe transform 0): no YCbCr conversion at all.
    "rgb_keep_40x30": (40, 30, 8, "RGB", dict(quality=90, keep_rgb=True)),
    "grey_41x29": (41, 29, 9, "L", dict(quality=85)),
    "grey_progressive_33x47": (33, 47, 10, "L", dict(quality=70, progressive=True)),
    # Four components, stored inverted with an Adobe marker as Pillow (and
    # Photoshop) write them.
    "cmyk_35x27": (35, 27, 11, "CMYK", dict(quality=90)),
}


def pixel_digests(open_bytes, names):
    """sha256 of Pillow's RGB and L pixels of the JPEGs `names`, in order."""
    rgb, grey = hashlib.sha256(), hashlib.sha256()
    for name in names:
        with Image.open(io.BytesIO(open_bytes(name))) as im:
            rgb.update(np.asarray(im.convert("RGB"), dtype=np.uint8).tobytes())
            grey.update(np.asarray(im.convert("L"), dtype=np.uint8).tobytes())
    return rgb.hexdigest(), grey.hexdigest()


# The kinds of the image folder's files, in turn.
FOLDER_KINDS = [
    ("RGB", dict(quality=75, subsampling="4:2:0")),
    ("RGB", dict(quality=90, subsampling="4:4:4")),
    ("RGB", dict(quality=80, subsampling="4:2:0", progressive=True)),
    ("L", dict(quality=85)),
    ("CMYK", dict(quality=90)),
    ("RGB", dict(quality=85, subsampling="4:2:2")),
    ("RGB", dict(quality=85, keep_rgb=True)),
]


def image_folder():
    """folder/ (JPEGs, 2 splits x 2 classes x 3) and pillow/ (their pixels)."""
    folder, pillow = os.path.join(HERE, "folder"), os.path.join(HERE, "pillow")
    os.makedirs(pillow, exist_ok=True)
    k = 0
    manifest = ['name = "jpeg-pillow"', 'format = "embedeval-npy"', "num_classes = 2",
                "image_shape = [32, 32, 3]", ""]
    for split in ["test", "train"]:
        pixels, labels = [], []
        for label, cls in enumerate(["a", "b"]):
            os.makedirs(os.path.join(folder, split, cls), exist_ok=True)
            for i in range(3):
                mode, save = FOLDER_KINDS[k % len(FOLDER_KINDS)]
                img = photo(32, 32, 100 + k)
                k += 1
                if mode != "RGB":
                    img = img.convert(mode)
                path = os.path.join(folder, split, cls, f"{i}.jpg")
                img.save(path, "JPEG", **save)
                with Image.open(path) as im:
                    pixels.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
                labels.append(label)
        np.save(os.path.join(pillow, f"{split}_images.npy"), np.stack(pixels))
        np.save(os.path.join(pillow, f"{split}_labels.npy"), np.array(labels, dtype=np.int64))
        manifest += [f"[splits.{split}]", f'images = "{split}_images.npy"',
                     f'labels = "{split}_labels.npy"', f"size = {len(labels)}", ""]
    with open(os.path.join(pillow, "dataset.toml"), "w") as f:
        f.write("\n".join(manifest))


def main():
    image_folder()
    for name, (w, h, seed, mode, save) in CASES.items():
        img = photo(w, h, seed)
        if mode != "RGB":
            img = img.convert(mode)
        path = os.path.join(HERE, name + ".jpg")
        img.save(path, "JPEG", **save)
        with Image.open(path) as im:
            assert im.size == (w, h)
            np.save(os.path.join(HERE, name + ".rgb.npy"),
                    np.asarray(im.convert("RGB"), dtype=np.uint8))
            np.save(os.path.join(HERE, name + ".l.npy"),
                    np.asarray(im.convert("L"), dtype=np.uint8))

    lines = []
    # The pets fixture: JPEGs of mixed sizes, one folder per split and class.
    for split in sorted(os.listdir(PETS)):
        for cls in sorted(os.listdir(os.path.join(PETS, split))):
            folder = os.path.join(PETS, split, cls)
            names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))

            def read(n, folder=folder):
                with open(os.path.join(folder, n), "rb") as f:
                    return f.read()

            rgb, grey = pixel_digests(read, names)
            lines.append(f"pets {split}/{cls} {len(names)} {rgb} {grey}")

    tar = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "..", "shared", "data", "cifar10-jpeg.tar.gz")
    if os.path.isfile(tar):
        with tarfile.open(tar) as t:
            members = {m.name: m for m in t.getmembers() if m.name.endswith(".jpg")}
            folders = sorted({os.path.dirname(n) for n in members})
            for folder in folders:
                names = sorted(n for n in members if os.path.dirname(n) == folder)
                rgb, grey = pixel_digests(lambda n: t.extractfile(members[n]).read(), names)
                # cifar10/<split>/<class>
                lines.append(f"cifar10 {folder.split('/', 1)[1]} {len(names)} {rgb} {grey}")
    else:
        print(f"make.py: {tar} is not here: no CIFAR-10 digests", file=sys.stderr)

    with open(os.path.join(HERE, "digests.txt"), "w") as f:
        f.write("# set folder files sha256(convert('RGB')) sha256(convert('L')), "
                "files in sorted order; made by make.py\n")
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(HERE, "pillow.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\n")
        f.write(f"numpy {np.__version__}\n")
        f.write(f"pillow {PIL.__version__}\n")
        f.write(f"libjpeg-turbo {features.version('libjpeg_turbo')}\n")


if __name__ == "__main__":
    main()
