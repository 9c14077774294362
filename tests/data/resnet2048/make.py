#!/usr/bin/env python3
# Generator for tests/data/resnet2048/ (model.onnx, pets/ image folder, reference/).
# Deterministic: fixed seeds, no timestamps. Versions used to produce the committed files:
#   Python 3.11.7, numpy==2.4.6, onnx==1.23.2, onnxruntime==1.31.1, pillow==13.0.0
# Run:  python3 -m venv tests/data/.venv
#       tests/data/.venv/bin/pip install numpy onnx onnxruntime==1.31.1 pillow
#       tests/data/.venv/bin/python tests/data/resnet2048/make.py
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "model.onnx")
PETS = os.path.join(HERE, "pets")
REF = os.path.join(HERE, "reference")

CLASSES = ["cat", "dog", "fox"]
SPLITS = {"train": 8, "val": 4}
CROP = 40
RESIZE = int(round(CROP / 0.875))  # 46
MODEL_SIZE = 32
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float64)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float64)


# ---------------------------------------------------------------- model
def build_model(path):
    rng = np.random.default_rng(0)
    inits = []
    nodes = []

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def bias(n):
        return (rng.standard_normal(n) * 0.01).astype(np.float32)

    def conv(name, x, cin, cout, k, stride=1):
        w = he((cout, cin, k, k), cin * k * k)
        b = bias(cout)
        inits.append(numpy_helper.from_array(w, name + ".weight"))
        inits.append(numpy_helper.from_array(b, name + ".bias"))
        p = k // 2
        nodes.append(helper.make_node(
            "Conv", [x, name + ".weight", name + ".bias"], [name],
            name=name, kernel_shape=[k, k], strides=[stride, stride], pads=[p, p, p, p]))
        return name

    def relu(x):
        out = x + ".relu"
        nodes.append(helper.make_node("Relu", [x], [out], name=out))
        return out

    def block(name, x, c):
        h = relu(conv(name + ".conv1", x, c, c, 3))
        h = conv(name + ".conv2", h, c, c, 3)
        s = name + ".add"
        nodes.append(helper.make_node("Add", [h, x], [s], name=s))
        return relu(s)

    x = relu(conv("stem", "images", 3, 16, 3))
    x = block("block1", x, 16)
    x = relu(conv("down", x, 16, 32, 3, stride=2))
    x = block("block2", x, 32)
    x = relu(conv("expand", x, 32, 2048, 1))
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1))
    w = he((2048, 128), 2048)
    b = bias(128)
    inits.append(numpy_helper.from_array(w, "head.weight"))
    inits.append(numpy_helper.from_array(b, "head.bias"))
    nodes.append(helper.make_node("Gemm", ["features", "head.weight", "head.bias"],
                                  ["embedding"], name="head"))

    graph = helper.make_graph(
        nodes, "resnet2048",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, MODEL_SIZE, MODEL_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 128]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 2048])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="embedeval-tests",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


# ---------------------------------------------------------------- dataset
BASE = {"cat": (200, 120, 60), "dog": (60, 110, 200), "fox": (80, 180, 70)}


def make_image(rng, cls):
    w = int(rng.integers(36, 91))
    h = int(rng.integers(36, 91))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    gx, gy = rng.uniform(-60, 60, size=2)
    grad = gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    img = np.array(BASE[cls], dtype=np.float64)[None, None, :] + grad[..., None]
    img = img + rng.normal(0, 12, size=(h, w, 3))
    # random rectangle with a random colour
    rw, rh = int(rng.integers(w // 5, w // 2 + 1)), int(rng.integers(h // 5, h // 2 + 1))
    rx, ry = int(rng.integers(0, w - rw + 1)), int(rng.integers(0, h - rh + 1))
    img[ry:ry + rh, rx:rx + rw, :] = rng.uniform(0, 255, size=3)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def build_dataset(root):
    if os.path.isdir(root):
        shutil.rmtree(root)
    rng = np.random.default_rng(1)
    for split in ["train", "val"]:
        for cls in CLASSES:
            d = os.path.join(root, split, cls)
            os.makedirs(d)
            for i in range(SPLITS[split]):
                arr = make_image(rng, cls)
                if cls == "cat" and i == 1:  # exactly one greyscale PNG per split
                    Image.fromarray(arr).convert("L").save(os.path.join(d, f"{i:03d}.png"))
                else:
                    Image.fromarray(arr, "RGB").save(os.path.join(d, f"{i:03d}.jpg"), quality=90)


# ---------------------------------------------------------------- reference
def list_split(root, split):
    classes = sorted({c for s in os.listdir(root) if os.path.isdir(os.path.join(root, s))
                      for c in os.listdir(os.path.join(root, s))
                      if os.path.isdir(os.path.join(root, s, c))}, key=lambda s: s.encode())
    items = []
    sd = os.path.join(root, split)
    for ci, cls in enumerate(classes):
        cd = os.path.join(sd, cls)
        if not os.path.isdir(cd):
            continue
        for f in sorted(os.listdir(cd), key=lambda s: s.encode()):
            items.append((os.path.join(cd, f), ci))
    return items


def load_pixels(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    if w <= h:
        nw, nh = RESIZE, int(round(h * RESIZE / w))
    else:
        nw, nh = int(round(w * RESIZE / h)), RESIZE
    im = im.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - CROP) / 2.0))
    left = int(round((nw - CROP) / 2.0))
    im = im.crop((left, top, left + CROP, top + CROP))
    return np.asarray(im, dtype=np.uint8)


def _axis(n_in, n_out):
    dst = np.arange(n_out, dtype=np.float64)
    src = (dst + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def _axis_weights(n_in, n_out):
    """The [n_out, n_in] matrix of one axis's resize. Enlarged: plain bilinear,
    half-pixel centres, src clamped at 0 (torch interpolate, antialias=False).
    Reduced: the antialiased bilinear of torch (antialias=True) and PIL
    (ImagingResample): the triangle filter stretched by scale = n_in / n_out
    around the centre (i + 0.5) * scale, support scale either side, bounds
    truncated as C does, weights normalised to sum 1."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    if scale <= 1.0:
        i0, i1, w = _axis(n_in, n_out)
        for o in range(n_out):
            m[o, i0[o]] += 1 - w[o]
            m[o, i1[o]] += w[o]
        return m
    for o in range(n_out):
        center = scale * (o + 0.5)
        lo = max(int(center - scale + 0.5), 0)
        hi = min(int(center + scale + 0.5), n_in)
        j = np.arange(lo, hi, dtype=np.float64)
        w = np.maximum(0.0, 1.0 - np.abs((j - center + 0.5) / scale))
        m[o, lo:hi] = w / w.sum()
    return m


def bilinear_nhwc(x, out_h, out_w):
    """Bilinear resize on NHWC, float64: torch interpolate(bilinear,
    align_corners=False) on an enlarged axis, with antialias=True on a
    reduced one (see _axis_weights)."""
    x = x.astype(np.float64)
    _, h, w, _ = x.shape
    my, mx = _axis_weights(h, out_h), _axis_weights(w, out_w)
    return np.einsum("oh,nhwc,pw->nopc", my, x, mx)


def pil_reduced_nhwc(x, out_h, out_w):
    """The same reduction by PIL's own code (mode "F", Image.BILINEAR, which
    is antialiased), channel by channel: an independent check of
    bilinear_nhwc where both axes shrink."""
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=np.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[3]):
            im = Image.fromarray(x[n, :, :, c].astype(np.float32), mode="F")
            out[n, :, :, c] = np.asarray(im.resize((out_w, out_h), Image.BILINEAR), dtype=np.float64)
    return out


def preprocess(pixels):
    x = bilinear_nhwc(pixels, MODEL_SIZE, MODEL_SIZE) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).astype(np.float32))


def build_reference(ref):
    if os.path.isdir(ref):
        for f in os.listdir(ref):
            if f.endswith(".npy"):
                os.remove(os.path.join(ref, f))
    os.makedirs(ref, exist_ok=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"])
    for split in ["train", "val"]:
        items = list_split(PETS, split)
        pixels = np.stack([load_pixels(p) for p, _ in items])
        labels = np.array([l for _, l in items], dtype=np.int64)
        emb, feat = sess.run(["embedding", "features"], {"images": preprocess(pixels)})
        np.save(os.path.join(ref, f"{split}_labels.npy"), labels)
        np.save(os.path.join(ref, f"{split}_embedding.npy"), emb.astype(np.float32))
        if split == "val":
            np.save(os.path.join(ref, "val_pixels.npy"), pixels)
            np.save(os.path.join(ref, "val_features.npy"), feat.astype(np.float32))
    rin = np.random.default_rng(3).integers(0, 256, size=(1, 5, 7, 3)).astype(np.uint8)
    np.save(os.path.join(ref, "resize_in.npy"), rin)
    np.save(os.path.join(ref, "resize_out.npy"), bilinear_nhwc(rin, 3, 4))
    np.save(os.path.join(ref, "resize_up.npy"), bilinear_nhwc(rin, 9, 11))
    # A reduction by 3.5 and 2.6 (antialiased), and one axis up, one down.
    big = np.random.default_rng(4).integers(0, 256, size=(1, 21, 13, 3)).astype(np.uint8)
    np.save(os.path.join(ref, "resize_big.npy"), big)
    down = bilinear_nhwc(big, 6, 5)
    assert np.abs(down - pil_reduced_nhwc(big, 6, 5)).max() < 1e-3, "PIL disagrees"
    np.save(os.path.join(ref, "resize_down.npy"), down)
    np.save(os.path.join(ref, "resize_mixed.npy"), bilinear_nhwc(big, 7, 20))
    with open(os.path.join(ref, "README.md"), "w") as f:
        f.write(f"""# Reference values for tests/data/resnet2048

Made by `../make.py` with Python + numpy {np.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__} (CPU, 1 thread), Pillow {Image.__version__}.
Images: `<split>/<class>/<file>`, classes and files sorted by bytes, label = index of class over all splits.
Pixels: Pillow open, `.convert("RGB")`, shorter side resized to {RESIZE} (`Image.BILINEAR`), center crop {CROP}x{CROP} with top/left = int(round((h|w - {CROP}) / 2)); uint8 NHWC -> `val_pixels.npy`.
Model input: numpy float64 bilinear resize {CROP}->{MODEL_SIZE} (half-pixel centres; a reduced axis antialiased: = torch interpolate align_corners=False, antialias=True, and PIL's Image.BILINEAR), /255, ImageNet mean/std, NCHW float32.
`*_embedding.npy` / `val_features.npy`: onnxruntime outputs `embedding` [n,128] and `features` [n,2048], float32. Labels int64.
`resize_in.npy`: uint8 [1,5,7,3] (numpy default_rng(3)); `resize_out.npy` [1,3,4,3] and `resize_up.npy` [1,9,11,3]: the same resize, float64, unrounded.
`resize_big.npy`: uint8 [1,21,13,3] (default_rng(4)); `resize_down.npy` [1,6,5,3] (both axes reduced, checked against PIL's mode-F Image.BILINEAR within 1e-3) and `resize_mixed.npy` [1,7,20,3] (height reduced, width enlarged).
""")


if __name__ == "__main__":
    build_model(MODEL)
    build_dataset(PETS)
    build_reference(REF)
