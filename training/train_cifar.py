"""Trains embedeval's CIFAR-10 zoo: a narrow CIFAR ResNet under the four
contrastive losses of Wang & Liu, "Understanding the Behaviour of Contrastive
Loss" (CVPR 2021), and exports each to models/cifar10-<name>/ as ONNX with its
model card and golden outputs. The losses are train.py's (imported from it,
so the definitions are the digits zoo's); see training/README.md, "CIFAR-10 zoo".

Data (--data): CIFAR-10 wherever the user has it:
- the image folder: <dir>/train/<class>/*.jpg|png and <dir>/test/<class>/...,
  classes in sorted order, files in sorted order within a class;
- the binary batches as distributed: data_batch_1.bin ... data_batch_5.bin and
  test_batch.bin (records of 1 label byte + 3072 bytes, CHW);
- or a .tar.gz / .tar of either, unpacked into training/data/ first.
A folder is also searched one level down (e.g. cifar10/ or cifar-10-batches-bin/).
The images are decoded once and cached as uint8 arrays in training/data/cifar10-npy/,
an embedeval-npy dataset (dataset.toml, [n, 32, 32, 3] images, int64 labels)
that embedeval itself can evaluate on. training/data/ is git-ignored: the images
are never committed.

Views (InstDisc / SimCLR, as the paper names them), on batches with torch ops,
every draw from one seeded generator: random resized crop to 32x32 (area
0.2-1, aspect 3/4-4/3, bilinear) with a horizontal flip (p 0.5) in one
grid_sample; colour jitter with p 0.8 (brightness, contrast, saturation, each a
factor in [0.6, 1.4], in that order; no hue); random grayscale p 0.2; then the
CIFAR-10 mean/std normalisation (the card's preset "cifar10").

Usage: python training/train_cifar.py --data PATH --all
       python training/train_cifar.py --data PATH --measure     (throughput)
"""
import argparse
import json
import math
import pathlib
import sys
import tarfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from train import HARD_ALPHA, contrastive_loss, model_name as digits_model_name, sha256  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "training" / "data"
CACHE = DATA_DIR / "cifar10-npy"
GOLDEN_IMAGES = ROOT / "training" / "cifar10_golden_images.npy"
GOLDEN_LABELS = ROOT / "training" / "cifar10_golden_labels.npy"
LOG = ROOT / "training" / "cifar10_training_log.json"  # (next to --out when it is not models/)

SEED = 0
BATCH = 256
LR = 1e-3
NEGATIVES = 2 * BATCH - 2            # in-batch: 510 per anchor
K_HARD = round(HARD_ALPHA * NEGATIVES)  # 4,096/50,000 of the negatives: 42
WIDTHS = (16, 32, 64)
TRAIN_IMAGES = 10_000                # class-balanced seeded subset of the 50,000
EPOCHS = 15
EMBED_DIM = 128
GOLDEN_ROWS = 64
# channels-last convolutions: 1.5-2x faster than NCHW for these narrow layers on CPU.
CL = torch.channels_last
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The card's preset "cifar10" (src/registry/card.rs): x = (pixel / 255 - mean) / std.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

SWEEP = (
    [("infonce", t) for t in (0.07, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)]
    + [("hard_infonce", t) for t in (0.07, 0.3, 0.7, 1.0)]
    + [("simple", None), ("hard_simple", None)]
)


def model_name(loss: str, tau) -> str:
    return "cifar10-" + digits_model_name(loss, tau)


# ---------------------------------------------------------------- data


def _find_source(path: pathlib.Path):
    """(kind, folder) of the CIFAR-10 under `path`: "bin" or "folder"."""
    candidates = [path] + (sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else [])
    for c in candidates:
        if (c / "data_batch_1.bin").is_file() and (c / "test_batch.bin").is_file():
            return "bin", c
        if (c / "train").is_dir() and (c / "test").is_dir():
            return "folder", c
    raise SystemExit(f"no CIFAR-10 under {path}: expected train/<class>/ and test/<class>/ image folders, "
                     "or data_batch_1.bin ... data_batch_5.bin and test_batch.bin, or a .tar.gz of either")


def _read_bin(files):
    recs = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 3073) for f in files])
    labels = recs[:, 0].astype(np.int64)
    images = recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_folder(split_dir: pathlib.Path):
    from PIL import Image

    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if len(classes) != 10:
        raise SystemExit(f"{split_dir}: {len(classes)} class folders, CIFAR-10 has 10")
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(f for f in (split_dir / cls).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for f in files:
            with Image.open(f) as im:
                a = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if a.shape != (32, 32, 3):
                raise SystemExit(f"{f}: {a.shape}, CIFAR-10 images are 32x32 RGB")
            images.append(a)
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int64), classes


def load_cifar10(data: str):
    """{train,test}_{x,y}: uint8 [n, 32, 32, 3] and int64 [n], decoded once
    and cached in training/data/cifar10-npy/."""
    path = pathlib.Path(data).expanduser().resolve()
    if path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        target = DATA_DIR / path.name.split(".")[0]
        if not target.exists():
            print(f"unpacking {path} into {target}", flush=True)
            with tarfile.open(path) as tar:
                tar.extractall(target, filter="data")
        path = target
    kind, src = _find_source(path)
    meta = {"source": str(src), "kind": kind}
    meta_file = CACHE / "source.json"
    stored = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if {k: v for k, v in stored.items() if k != "format"} == meta:
        out = {f"{s}_{v}": np.load(CACHE / f"{s}_{'images' if v == 'x' else 'labels'}.npy")
               for s in ("train", "test") for v in ("x", "y")}
        print(f"CIFAR-10 from the cache {CACHE} (decoded from {src})", flush=True)
        return out, stored
    t0 = time.time()
    if kind == "bin":
        tr_x, tr_y = _read_bin([src / f"data_batch_{i}.bin" for i in range(1, 6)])
        te_x, te_y = _read_bin([src / "test_batch.bin"])
        meta["format"] = "CIFAR-10 binary batches"
    else:
        tr_x, tr_y, classes = _read_folder(src / "train")
        te_x, te_y, _ = _read_folder(src / "test")
        meta["format"] = "image folder (classes sorted)"
        if tuple(classes) != CLASSES:
            print(f"note: class folders {classes}", flush=True)
    if tr_x.shape != (50_000, 32, 32, 3) or te_x.shape != (10_000, 32, 32, 3):
        raise SystemExit(f"{src}: train {tr_x.shape}, test {te_x.shape}; CIFAR-10 has 50,000 and 10,000 32x32x3")
    CACHE.mkdir(parents=True, exist_ok=True)
    for split, x, y in (("train", tr_x, tr_y), ("test", te_x, te_y)):
        np.save(CACHE / f"{split}_images.npy", x)
        np.save(CACHE / f"{split}_labels.npy", y)
    (CACHE / "dataset.toml").write_text(f"""# embedeval dataset manifest (format embedeval-npy), written by training/train_cifar.py.
name = "cifar10"
format = "embedeval-npy"
description = "CIFAR-10 decoded from {src} ({meta['format']})"
source = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009"
num_classes = 10
image_shape = [32, 32, 3]

[splits.train]
images = "train_images.npy"
labels = "train_labels.npy"
size = 50000

[splits.test]
images = "test_images.npy"
labels = "test_labels.npy"
size = 10000
""")
    meta_file.write_text(json.dumps(meta) + "\n")
    print(f"decoded CIFAR-10 from {src} ({meta['format']}) in {time.time() - t0:.0f}s; cached in {CACHE}", flush=True)
    return {"train_x": tr_x, "train_y": tr_y, "test_x": te_x, "test_y": te_y}, meta


def subset(labels: np.ndarray, n: int) -> np.ndarray:
    """A class-balanced subset of n indices, seeded (seed 0), in sorted order."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(SEED)
    per = n // 10
    idx = [rng.permutation(np.flatnonzero(labels == c))[:per] for c in range(10)]
    return np.sort(np.concatenate(idx))


def to_tensor(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 [n, 32, 32, 3] -> uint8 NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(images_u8.transpose(0, 3, 1, 2)))


_MEAN = torch.tensor(MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(STD).view(1, 3, 1, 1)


def normalise(x01: torch.Tensor) -> torch.Tensor:
    return (x01 - _MEAN) / _STD


def preprocess(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 [n, 32, 32, 3] -> the model's float32 NCHW input (preset cifar10)."""
    return normalise(to_tensor(images_u8).float() / 255.0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def augment(xb_u8: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One seeded view of a uint8 NCHW batch, normalised (see the module doc)."""
    n = xb_u8.shape[0]
    x = xb_u8.float() / 255.0
    u = lambda: torch.rand(n, generator=gen)  # noqa: E731
    # Random resized crop (area 0.2-1, aspect 3/4-4/3) and horizontal flip: the
    # crop's side fractions w, h and centre, as one affine map of the output grid.
    area = 0.2 + 0.8 * u()
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u())
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (u() * 2 - 1) * (1 - w)
    cy = (u() * 2 - 1) * (1 - h)
    flip = torch.where(u() < 0.5, -1.0, 1.0)
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([w * flip, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)
    grid = F.affine_grid(theta, [n, 3, 32, 32], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Colour jitter with p 0.8: brightness, contrast, saturation factors in [0.6, 1.4].
    jitter = u() < 0.8
    b, c, s = (torch.where(jitter, 0.6 + 0.8 * u(), 1.0).view(n, 1, 1, 1) for _ in range(3))
    x = (x * b).clamp(0, 1)
    m = _gray(x).mean((1, 2, 3), keepdim=True)
    x = ((x - m) * c + m).clamp(0, 1)
    g = _gray(x)
    x = ((x - g) * s + g).clamp(0, 1)
    # Random grayscale, p 0.2.
    gray = (u() < 0.2).view(n, 1, 1, 1)
    x = torch.where(gray, _gray(x).expand(-1, 3, -1, -1), x)
    return normalise(x)


# ---------------------------------------------------------------- network


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Encoder(nn.Module):
    """CIFAR ResNet: 3x3 stem (no max-pool), one BasicBlock per stage (strides
    1, 2, 2), global average pool -> `features`; MLP head -> `embedding`."""

    def __init__(self, widths=WIDTHS) -> None:
        super().__init__()
        w0 = widths[0]
        layers = [nn.Conv2d(3, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU()]
        cin = w0
        for i, w in enumerate(widths):
            layers.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, 128), nn.ReLU(), nn.Linear(128, EMBED_DIM))

    def forward(self, x):
        features = self.backbone(x)
        return self.head(features), features


def architecture(widths) -> str:
    w = "-".join(str(v) for v in widths)
    return (f"cifar resnet: conv3x3 {widths[0]} (no max-pool), basicblock x1 per stage, widths {w}, "
            f"strides 1-2-2, gap (features {widths[-1]}) + mlp {widths[-1]}-128-{EMBED_DIM} (embedding {EMBED_DIM})")


# ---------------------------------------------------------------- export


def export(model, out: pathlib.Path, card: str, golden_x: torch.Tensor) -> float:
    """model.onnx, model.toml and the golden outputs of `golden_x` into `out`;
    returns the max abs difference of ONNX Runtime to PyTorch on them."""
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    model.eval()
    torch.onnx.export(
        model, (torch.zeros(2, 3, 32, 32),), str(onnx_path), dynamo=False, opset_version=17,
        input_names=["images"], output_names=["embedding", "features"],
        dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}, "features": {0: "batch"}},
    )
    with torch.no_grad():
        emb, feat = model(golden_x)
    emb, feat = emb.numpy().astype(np.float32), feat.numpy().astype(np.float32)
    np.save(out / "golden_embedding.npy", emb)
    np.save(out / "golden_features.npy", feat)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    o_emb, o_feat = sess.run(["embedding", "features"], {"images": golden_x.numpy()})
    diff = float(max(np.abs(o_emb - emb).max(), np.abs(o_feat - feat).max()))
    golden = f"""
[golden]
# Inputs: the first {GOLDEN_ROWS} CIFAR-10 test images (loader order), also stored as uint8
# [{GOLDEN_ROWS}, 32, 32, 3] in training/cifar10_golden_images.npy (labels: cifar10_golden_labels.npy).
rows = {GOLDEN_ROWS}
split = "test"
embedding = "golden_embedding.npy"
features = "golden_features.npy"
"""
    (out / "model.toml").write_text(card.replace("@SHA256@", sha256(onnx_path)) + golden)
    model.train()
    return diff


def card_text(loss, tau, args, meta, last: float, seconds: float) -> str:
    temp_line = f"temperature = {tau:g}" if tau is not None else "temperature = 0.0  # the simple losses have no temperature"
    hard_line = f"hard_negatives = {K_HARD}\n" if loss.startswith("hard") else ""
    widths = "-".join(str(v) for v in args.widths)
    return f"""# embedeval model card
description = "CIFAR ResNet {widths} on CIFAR-10 ({args.train_images} training images), {loss} loss{'' if tau is None else f' at tau = {tau:g}'}, in-batch negatives (batch {BATCH})"
onnx_sha256 = "@SHA256@"

[training]
loss = "{loss}"
{temp_line}
dataset = "cifar10"
epochs = {args.epochs}
seed = {SEED}
batch_size = {BATCH}
negatives = "in-batch"
{hard_line}optimizer = "adam lr={LR:g}"
architecture = "{architecture(args.widths)}"
recipe = "{args.epochs} epochs over a class-balanced {args.train_images}-image subset of the train split (seed 0), batch {BATCH}, two views: random resized crop 32 (area 0.2-1), flip, colour jitter 0.4 b/c/s p 0.8, grayscale p 0.2"
train_images = {args.train_images}
data = "{meta['format']}"
final_loss = {last:.6f}
train_seconds = {seconds:.1f}

[input]
name = "images"
dtype = "float32"
shape = [-1, 3, 32, 32]
layout = "NCHW"
preset = "cifar10"

[outputs]
names = ["embedding", "features"]
embedding = "embedding"
features = "features"
"""


# ---------------------------------------------------------------- training


@torch.no_grad()
def embed_all(model, x_u8: np.ndarray, batch: int = 1000):
    model.eval()
    embs, feats = [], []
    for i in range(0, len(x_u8), batch):
        e, f = model(preprocess(x_u8[i:i + batch]))
        embs.append(F.normalize(e, dim=1))
        feats.append(F.normalize(f, dim=1))
    model.train()
    return torch.cat(embs), torch.cat(feats)


def knn_top1(bank, bank_y, query, query_y, k=200, t=0.1) -> float:
    """Weighted kNN (InstDisc): k = 200, T = 0.1, cosine similarity."""
    bank_y = torch.from_numpy(bank_y)
    correct = 0
    for i in range(0, len(query), 1000):
        sim = query[i:i + 1000] @ bank.t()
        s, idx = sim.topk(min(k, len(bank)), dim=1)
        votes = torch.zeros(len(s), 10).scatter_add_(1, bank_y[idx], torch.exp(s / t))
        correct += (votes.argmax(1).numpy() == query_y[i:i + 1000]).sum()
    return float(correct) / len(query)


def evaluate(model, data, idx) -> dict:
    bank_e, bank_f = embed_all(model, data["train_x"][idx])
    test_e, test_f = embed_all(model, data["test_x"])
    y, ty = data["train_y"][idx], data["test_y"]
    return {"knn_top1_embedding": knn_top1(bank_e, y, test_e, ty), "knn_top1_features": knn_top1(bank_f, y, test_f, ty)}


def train_one(loss: str, tau, args, data, meta, idx) -> dict:
    name = model_name(loss, tau)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = Encoder(args.widths).to(memory_format=CL)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x = to_tensor(data["train_x"][idx])
    n = x.shape[0]
    t0, c0 = time.time(), time.process_time()
    last = float("nan")
    epoch_losses = []
    for epoch in range(args.epochs):
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for start in range(0, n - BATCH + 1, BATCH):  # full batches only: 510 negatives each
            xb = x[perm[start:start + BATCH]]
            v = torch.cat([augment(xb, gen), augment(xb, gen)], 0).contiguous(memory_format=CL)
            emb, _ = model(v)
            z = F.normalize(emb, dim=1)
            l = contrastive_loss(z, loss, tau, K_HARD)
            opt.zero_grad()
            l.backward()
            opt.step()
            total += l.item() * BATCH
            count += BATCH
        last = total / count
        epoch_losses.append(round(last, 6))
        print(f"{name}: epoch {epoch + 1}/{args.epochs} loss {last:.4f} ({time.time() - t0:.0f}s)", flush=True)
    seconds, cpu_seconds = time.time() - t0, time.process_time() - c0
    acc = evaluate(model, data, idx)
    golden_x = preprocess(data["test_x"][:GOLDEN_ROWS])
    diff = export(model, pathlib.Path(args.out) / name, card_text(loss, tau, args, meta, last, seconds), golden_x)
    print(f"{name}: done in {seconds:.0f}s ({cpu_seconds:.0f} CPU-s), final loss {last:.4f}, kNN top-1 {acc['knn_top1_embedding']:.4f} "
          f"(embedding) {acc['knn_top1_features']:.4f} (features), ONNX vs PyTorch max abs {diff:.2e}", flush=True)
    return {"name": name, "loss": loss, "tau": tau, "final_loss": last, "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
            "threads": torch.get_num_threads(),
            "epoch_losses": epoch_losses, "onnx_max_abs_diff": diff, **acc}


def measure(args, data) -> None:
    """Anchors (two views each) per second of a whole training step (views,
    forward, loss, backward, Adam) at each width: wall clock and process CPU time."""
    x = to_tensor(data["train_x"][:BATCH])
    gen = torch.Generator().manual_seed(SEED)
    for widths in ([16, 32, 64], [32, 64, 128]):
        torch.manual_seed(SEED)
        model = Encoder(widths).to(memory_format=CL)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        params = sum(p.numel() for p in model.parameters())

        def step():
            v = torch.cat([augment(x, gen), augment(x, gen)], 0).contiguous(memory_format=CL)
            emb, _ = model(v)
            l = contrastive_loss(F.normalize(emb, dim=1), "infonce", 0.2, K_HARD)
            opt.zero_grad()
            l.backward()
            opt.step()

        step()
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.measure_steps):
            step()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        n = BATCH * args.measure_steps
        print(f"widths {widths}: {params} parameters, {n / wall:.0f} images/s wall, {n / cpu:.0f} images per CPU-second "
              f"({torch.get_num_threads()} threads, {args.measure_steps} steps of batch {BATCH}, two views, forward+backward)",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA_DIR / "cifar10"),
                    help="CIFAR-10: image folder, binary batches, or a .tar.gz of either [training/data/cifar10]")
    ap.add_argument("--all", action="store_true", help="train the whole sweep (13 models)")
    ap.add_argument("--only", nargs="*", default=[], help="model names, e.g. cifar10-infonce-t0.2")
    ap.add_argument("--resume", action="store_true", help="skip models whose card already has this recipe")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--train-images", type=int, default=TRAIN_IMAGES)
    ap.add_argument("--widths", type=int, nargs=3, default=list(WIDTHS))
    ap.add_argument("--out", default=str(ROOT / "models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--measure", action="store_true", help="print training throughput and exit")
    ap.add_argument("--measure-steps", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data, meta = load_cifar10(args.data)
    if args.measure:
        measure(args, data)
        return
    jobs = [(l, t) for l, t in SWEEP if args.all or model_name(l, t) in args.only]
    if not jobs:
        ap.error("nothing to train: pass --all or --only NAME...")
    if pathlib.Path(args.out).resolve() == (ROOT / "models"):
        np.save(GOLDEN_IMAGES, data["test_x"][:GOLDEN_ROWS])
        np.save(GOLDEN_LABELS, data["test_y"][:GOLDEN_ROWS])
    idx = subset(data["train_y"], args.train_images)
    args.train_images = len(idx)
    print(f"training on {len(idx)} images, {args.epochs} epochs, batch {BATCH}, widths {args.widths}, "
          f"{args.threads} threads; {len(jobs)} models", flush=True)
    for loss, tau in jobs:
        name = model_name(loss, tau)
        card = pathlib.Path(args.out) / name / "model.toml"
        if args.resume and card.exists():
            expect = card_text(loss, tau, args, meta, 0.0, 0.0).split("final_loss")[0].split("onnx_sha256")[1]
            if expect.split("\n", 1)[1] in card.read_text():
                print(f"{name}: already trained with this recipe, skipped", flush=True)
                continue
        result = train_one(loss, tau, args, data, meta, idx)
        log_file = LOG if pathlib.Path(args.out).resolve() == (ROOT / "models") else pathlib.Path(args.out) / LOG.name
        log = json.loads(log_file.read_text()) if log_file.exists() else {}
        log[name] = result
        log_file.write_text(json.dumps(log, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
