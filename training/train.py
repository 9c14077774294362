"""Trains embedeval's model zoo: small CNN encoders on datasets/digits under the
contrastive losses studied by Wang & Liu, "Understanding the Behaviour of
Contrastive Loss" (CVPR 2021), and exports each to models/<name>/ as ONNX with
its model card and golden outputs.

Negatives are in-batch (SimCLR-style, Chen et al. 2020): each of the 2B views
in a batch has its other view as the positive and the other 2B-2 views as
negatives. With 1,257 training images a moving-average memory bank (the
paper's InstDisc setup) is refreshed only a few times per epoch and was found
undertrained here, while in-batch negatives are always computed by the current
encoder; with B = 256 each anchor sees 510 negatives, 40% of the training set.

Losses (s = cosine similarity, tau = temperature):
- infonce (Eq. 1):       -log( exp(s_pos/tau) / sum_{k} exp(s_k/tau) ), k over
                          the positive and all negatives.
- hard_infonce (Eq. 9):  the same with only the K most similar negatives in the
                          denominator. The paper keeps 4,095 of 50,000
                          (alpha = 0.0819); scaled to our 510 negatives,
                          K = round(0.0819 * 510) = 42.
- simple (Eq. 3):        -s_pos + lambda * sum_{k != pos} s_k, the tau -> inf
                          limit of Eq. 1, with lambda = 1/#negatives (the
                          mean over the negatives).
- hard_simple:           -s_pos + mean of the K most similar negatives.

With --checkpoint-every N, the model trained for --epochs E is instead exported
at epoch 1 and every N epochs up to E as a training run: models/<name>-e<EEE>/
with `run = "<name>-run"` and `step = <epoch>` in its card, the checkpoints
`embedeval runs show` follows.

With --seed N (default 0, the zoo's seed) the seed goes everywhere seed 0 goes
(torch, numpy, the generator that draws the views and the batch order) and into
the card's `[training] seed`; with N != 0 each output name takes the suffix
-s<N> (models/<name>-s<N>/, run <name>-s<N>-run) and the card's description
names the seed. Seed 0 writes exactly the zoo's names and cards.

Usage: python training/train.py --all   (see training/README.md)
       python training/train.py --only infonce-t0.2 --checkpoint-every 10 --epochs 50
       python training/train.py --only infonce-t0.2 --seed 1 --out sweeps/digits-seeds
"""
import argparse
import hashlib
import json
import math
import pathlib
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = 0
EPOCHS = 300
BATCH = 256
LR = 1e-3
HARD_ALPHA = 0.0819
FEATURE_DIM = 128
EMBED_DIM = 128
PIXEL_MAX = 16.0
GOLDEN_ROWS = 64

# The sweep: (loss, tau). tau is None for the simple losses (no temperature).
SWEEP = (
    [("infonce", t) for t in (0.05, 0.07, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)]
    + [("hard_infonce", t) for t in (0.07, 0.2, 0.5, 1.0)]
    + [("simple", None), ("hard_simple", None)]
)


def model_name(loss: str, tau) -> str:
    return loss.replace("_", "-") if tau is None else f"{loss.replace('_', '-')}-t{tau:g}"


def output_name(loss: str, tau, seed: int = SEED) -> str:
    """The folder name: model_name, with -s<seed> for any seed but the zoo's (0)."""
    return model_name(loss, tau) + (f"-s{seed}" if seed != SEED else "")


class Encoder(nn.Module):
    """Small CNN: a conv backbone to `features`, an MLP projection to `embedding`."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, FEATURE_DIM, 3, padding=1), nn.BatchNorm2d(FEATURE_DIM), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(FEATURE_DIM, 128), nn.ReLU(), nn.Linear(128, EMBED_DIM))

    def forward(self, x):
        features = self.backbone(x)
        return self.head(features), features


def preprocess(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 [n, 8, 8, 1] -> float32 NCHW in [0, 1] (the card: scale 1/16, mean 0, std 1)."""
    x = torch.from_numpy(images_u8.astype(np.float32) / PIXEL_MAX)
    return x.permute(0, 3, 1, 2).contiguous()


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Seeded views for 8x8 digits: random shift (pad 1, crop 8x8), rotation within
    +-10 degrees, scale 0.9-1.1, and Gaussian noise (sigma 0.05)."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    shift = (torch.randint(-1, 2, (n, 2), generator=gen).float()) * (2.0 / 8.0)
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    out = out + 0.05 * torch.randn(out.shape, generator=gen)
    return out.clamp(0.0, 1.0)


def contrastive_loss(z: torch.Tensor, loss: str, tau, k_hard: int) -> torch.Tensor:
    """z: [2B, d] L2-normalised, views i and i+B are positives."""
    n = z.shape[0]
    b = n // 2
    sim = z @ z.t()
    pos_idx = torch.arange(n).roll(b)
    s_pos = sim[torch.arange(n), pos_idx]
    neg_mask = torch.ones(n, n, dtype=torch.bool)
    neg_mask[torch.arange(n), torch.arange(n)] = False
    neg_mask[torch.arange(n), pos_idx] = False
    negs = sim[neg_mask].view(n, n - 2)
    if loss.startswith("hard"):
        negs = negs.topk(k_hard, dim=1).values
    if loss.endswith("infonce"):
        logits = torch.cat([s_pos[:, None], negs], 1) / tau
        return (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    return (-s_pos + negs.mean(1)).mean()


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(model, out: pathlib.Path, card: str, golden_x=None) -> None:
    """Writes model.onnx and its card (with its sha256) into `out`, and the
    golden outputs of `golden_x` when given."""
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    model.eval()
    torch.onnx.export(
        model, (torch.zeros(2, 1, 8, 8),), str(onnx_path), dynamo=False, opset_version=17,
        input_names=["images"], output_names=["embedding", "features"],
        dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}, "features": {0: "batch"}},
    )
    golden = ""
    if golden_x is not None:
        with torch.no_grad():
            emb, feat = model(golden_x)
        np.save(out / "golden_embedding.npy", emb.numpy().astype(np.float32))
        np.save(out / "golden_features.npy", feat.numpy().astype(np.float32))
        golden = f"""
[golden]
rows = {GOLDEN_ROWS}
split = "test"
embedding = "golden_embedding.npy"
features = "golden_features.npy"
"""
    (out / "model.toml").write_text(card.replace("@SHA256@", sha256(onnx_path)) + golden)
    model.train()


def card_text(loss: str, tau, epochs: int, k_hard: int, last: float, seconds: float, run: str = "", step: int = 0,
              seed: int = SEED) -> str:
    """The model card, its ONNX sha256 left as @SHA256@."""
    temp_line = f"temperature = {tau:g}" if tau is not None else "temperature = 0.0  # the simple losses have no temperature"
    hard_line = f"hard_negatives = {k_hard}\n" if loss.startswith("hard") else ""
    run_lines = f'run = "{run}"\nstep = {step}\n' if run else ""
    what = f"epoch {step} of run {run}" if run else f"in-batch negatives (batch {BATCH})"
    if seed != SEED:
        what += f", seed {seed}"
    return f"""# embedeval model card
description = "Small CNN on digits, {loss} loss{'' if tau is None else f' at tau = {tau:g}'}, {what}"
onnx_sha256 = "@SHA256@"

[training]
loss = "{loss}"
{temp_line}
dataset = "digits"
epochs = {epochs}
seed = {seed}
{run_lines}batch_size = {BATCH}
negatives = "in-batch"
{hard_line}optimizer = "adam lr={LR:g}"
architecture = "conv32-conv64-pool-conv128-gap (features 128) + mlp 128-128 (embedding 128)"
final_loss = {last:.6f}
train_seconds = {seconds:.1f}

[input]
name = "images"
dtype = "float32"
shape = [-1, 1, 8, 8]
layout = "NCHW"
scale = 0.0625
mean = [0.0]
std = [1.0]

[outputs]
names = ["embedding", "features"]
embedding = "embedding"
features = "features"
"""


def train_one(loss: str, tau, epochs: int, out_root: pathlib.Path, data: dict, checkpoint_every: int = 0,
              seed: int = SEED) -> dict:
    """Trains one model for `epochs` and exports it to out_root/<name>/; with
    `checkpoint_every`, exports epoch 1 and every that many epochs as the
    checkpoints of run <name>-run (out_root/<name>-e<EEE>/) instead. <name> is
    output_name: -s<seed> is appended for a seed other than 0."""
    name = output_name(loss, tau, seed)
    run = f"{name}-run" if checkpoint_every else ""
    torch.manual_seed(seed)
    np.random.seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Encoder()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x = data["train_x"]
    n = x.shape[0]
    k_hard = round(HARD_ALPHA * (2 * BATCH - 2))
    t0 = time.time()
    last = float("nan")
    checkpoints = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for start in range(0, n, BATCH):
            idx = perm[start:start + BATCH]
            xb = x[idx]
            v = torch.cat([augment(xb, gen), augment(xb, gen)], 0)
            emb, _ = model(v)
            z = F.normalize(emb, dim=1)
            k = min(k_hard, z.shape[0] - 2)
            l = contrastive_loss(z, loss, tau, k)
            opt.zero_grad()
            l.backward()
            opt.step()
            total += l.item() * len(idx)
            count += len(idx)
        last = total / count
        done = epoch + 1
        if epoch % 50 == 0 or done == epochs:
            print(f"{name}: epoch {done}/{epochs} loss {last:.4f} ({time.time() - t0:.0f}s)", flush=True)
        if checkpoint_every and (done == 1 or done % checkpoint_every == 0 or done == epochs):
            card = card_text(loss, tau, done, k_hard, last, time.time() - t0, run=run, step=done, seed=seed)
            export(model, out_root / f"{name}-e{done:03d}", card, golden_x=data["test_x"][:GOLDEN_ROWS])
            checkpoints.append({"epoch": done, "loss": last})
    seconds = time.time() - t0
    if not checkpoint_every:
        card = card_text(loss, tau, epochs, k_hard, last, seconds, seed=seed)
        export(model, out_root / name, card, golden_x=data["test_x"][:GOLDEN_ROWS])
    result = {"name": run or name, "loss": loss, "tau": tau, "final_loss": last, "seconds": seconds, "checkpoints": checkpoints}
    if seed != SEED:
        result["seed"] = seed
    return result


def load_split(split: str) -> torch.Tensor:
    d = ROOT / "datasets" / "digits"
    return preprocess(np.load(d / f"{split}_images.npy"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="train the whole sweep")
    ap.add_argument("--only", nargs="*", default=[], help="model names to train, e.g. infonce-t0.2")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--out", default=str(ROOT / "models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=SEED,
                    help="seed for torch, numpy, the views and the batch order; N != 0 names outputs <name>-s<N>")
    ap.add_argument("--checkpoint-every", type=int, default=0,
                    help="export epoch 1 and every N epochs as the checkpoints of a run (models/<name>-e<EEE>/)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = {"train_x": load_split("train"), "test_x": load_split("test")}
    jobs = [(l, t) for l, t in SWEEP if args.all or model_name(l, t) in args.only]
    if not jobs:
        ap.error("nothing to train: pass --all or --only NAME...")
    if args.seed < 0:
        ap.error("--seed must be >= 0 (the card's seed is unsigned)")
    results = []
    for loss, tau in jobs:
        results.append(train_one(loss, tau, args.epochs, pathlib.Path(args.out), data, args.checkpoint_every, args.seed))
    log = pathlib.Path(args.out) / "training_log.json"
    previous = json.loads(log.read_text()) if log.exists() else {}
    previous.update({r["name"]: r for r in results})
    log.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
