#!/usr/bin/env python3
"""End-to-end check of `embedeval.torch.evaluate_module` with real torch.

Starts the release server (`target/release/embedeval serve`, a temporary data
dir), builds a small CNN for the bundled `digits` dataset (outputs `embedding`
128-d and `features` 64-d), evaluates it untrained (epoch 0), then trains it
for 3 epochs with InfoNCE (tau = 0.2) on two augmented views of the train split
and evaluates it after each epoch through the torch helper (export to ONNX,
register with replace=True, evaluate on digits). Prints a Markdown table and
writes training/torch_helper_check.json.

    training/.venv/bin/python training/check_torch_helper.py

Needs training/.venv (training/requirements.txt) with the client installed
(`pip install -e clients/python`), and a built target/release/embedeval.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedeval
from embedeval.torch import evaluate_module

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "embedeval"
OUT_JSON = ROOT / "training" / "torch_helper_check.json"

NAME = "torch-helper-check"
TAU = 0.2
EPOCHS = 3
BATCH = 128
LR = 3e-3
SEED = 0
PIXEL_MAX = 16.0

# The bundled cards' preprocessing (models/*/model.toml): pixels 0..16 scaled
# by 1/16, no mean/std normalisation. The rest is read off the ONNX graph.
CARD = """\
description = "embedeval torch helper check: small CNN on digits, infonce tau = 0.2"

[input]
scale = 0.0625
mean = [0.0]
std = [1.0]
"""


class SmallCNN(nn.Module):
    """conv16 -> conv32 -> max-pool -> conv64 -> GAP (features, 64-d);
    MLP 64 -> 128 -> 128 (embedding, 128-d)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128))

    def forward(self, x):
        features = self.backbone(x)
        return self.head(features), features


def load_train() -> torch.Tensor:
    images = np.load(ROOT / "datasets" / "digits" / "train_images.npy")  # uint8 [n, 8, 8, 1]
    x = torch.from_numpy(images.astype(np.float32) / PIXEL_MAX)
    return x.permute(0, 3, 1, 2).contiguous()  # [n, 1, 8, 8] in [0, 1]


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift by up to one pixel each way (zero fill), then Gaussian noise sigma 0.05."""
    n = x.shape[0]
    padded = F.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=gen)
    dx = torch.randint(0, 3, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(n)])
    out = out + 0.05 * torch.randn(out.shape, generator=gen)
    return out.clamp(0.0, 1.0)


def info_nce(z: torch.Tensor, tau: float) -> torch.Tensor:
    """z: [2B, d] L2-normalised; rows i and i+B are positives, every other row a negative."""
    n = z.shape[0]
    sim = z @ z.t() / tau
    sim = sim.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    pos = torch.arange(n).roll(n // 2)
    return F.cross_entropy(sim, pos)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(addr: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early with status {proc.returncode}")
        rc = subprocess.run(
            [str(BINARY), "health", "--server", addr, "--timeout", "2"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ).returncode
        if rc == 0:
            return
        time.sleep(0.25)
    raise TimeoutError(f"the server at {addr} was not healthy after {timeout:.0f} s")


def evaluate(client, model, epoch: int, loss_value) -> dict:
    t0 = time.monotonic()
    report = evaluate_module(
        client, model, torch.zeros(1, 1, 8, 8),
        name=NAME, loss="infonce", temperature=TAU, dataset="digits", preset=None, card=CARD,
    )
    report.raise_for_status()
    row = {
        "epoch": epoch,
        "train_loss": loss_value,
        "uniformity": report.uniformity,
        "tolerance": report.tolerance,
        "knn_top1": report.knn.top1 if report.knn else None,
        "linear_top1": report.linear.top1 if report.linear else None,
        "linear_feature_output": report.linear.feature_output if report.linear else None,
        "embedding_dim": report.embedding_dim,
        "num_test": report.num_test,
        "num_train": report.num_train,
        "evaluate_seconds": round(time.monotonic() - t0, 2),
    }
    print(
        f"epoch {epoch}: loss {'-' if loss_value is None else f'{loss_value:.4f}'}  "
        f"uniformity {row['uniformity']:.4f}  tolerance {row['tolerance']:.4f}  "
        f"kNN top-1 {row['knn_top1']:.4f}  linear top-1 {row['linear_top1']:.4f}  "
        f"({row['evaluate_seconds']:.1f} s)",
        flush=True,
    )
    return row


def main() -> int:
    if not BINARY.exists():
        print(f"{BINARY} is missing: build the release binary first", file=sys.stderr)
        return 2
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    started = time.monotonic()

    port = free_port()
    addr = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="embedeval-torch-check-") as data_dir:
        log = open(pathlib.Path(data_dir) / "server.log", "wb")
        proc = subprocess.Popen(
            [str(BINARY), "serve", "--addr", addr, "--models-dir", "models",
             "--datasets-dir", "datasets", "--data-dir", data_dir],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        rows = []
        try:
            wait_healthy(addr, proc)
            x = load_train()
            gen = torch.Generator().manual_seed(SEED)
            model = SmallCNN()
            opt = torch.optim.Adam(model.parameters(), lr=LR)
            with embedeval.Client(addr) as client:
                rows.append(evaluate(client, model, 0, None))
                for epoch in range(1, EPOCHS + 1):
                    model.train()
                    perm = torch.randperm(x.shape[0], generator=gen)
                    losses = []
                    for start in range(0, x.shape[0], BATCH):
                        batch = x[perm[start:start + BATCH]]
                        if batch.shape[0] < 2:
                            continue
                        views = torch.cat([augment(batch, gen), augment(batch, gen)])
                        emb, _ = model(views)
                        loss = info_nce(F.normalize(emb, dim=1), TAU)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        losses.append(loss.item())
                    rows.append(evaluate(client, model, epoch, float(np.mean(losses))))
                client.delete_model(NAME)
        except BaseException:
            log.flush()
            tail = (pathlib.Path(data_dir) / "server.log").read_bytes()[-4000:]
            print("--- server log (tail) ---\n" + tail.decode(errors="replace"), file=sys.stderr)
            raise
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()

    seconds = time.monotonic() - started
    print()
    print("| epoch | InfoNCE loss (τ = 0.2) | uniformity | tolerance | kNN top-1 | linear top-1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        loss = "—" if r["train_loss"] is None else f"{r['train_loss']:.4f}"
        print(f"| {r['epoch']} | {loss} | {r['uniformity']:.4f} | {r['tolerance']:.4f} | "
              f"{r['knn_top1']:.4f} | {r['linear_top1']:.4f} |")
    print(f"\ntorch {torch.__version__}, embedeval client {embedeval.__version__}, {seconds:.1f} s in all")

    result = {
        "what": "embedeval.torch.evaluate_module end to end: small CNN on digits, InfoNCE tau=0.2, "
                "evaluated untrained (epoch 0) and after each of 3 epochs",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "client": embedeval.__version__,
        "model": {"architecture": "conv16-conv32-pool-conv64-gap (features 64) + mlp 64-128-128 (embedding 128)",
                  "loss": "infonce", "temperature": TAU, "batch_size": BATCH, "optimizer": f"adam lr={LR}",
                  "seed": SEED, "augmentation": "shift +-1 px (zero fill) + gaussian noise sigma 0.05",
                  "card_input": {"scale": 0.0625, "mean": [0.0], "std": [1.0]}},
        "rows": rows,
        "seconds": round(seconds, 1),
    }
    OUT_JSON.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
