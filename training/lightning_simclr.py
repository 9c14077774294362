"""SimCLR in PyTorch Lightning with the repository's CIFAR ResNet
(train_cifar.py's Encoder, views and InfoNCE loss), evaluated while it trains
by embedeval.lightning.EmbedevalCallback: the module the Lightning callback's
suite (tests/lightning) trains, and the run of docs/book/runs.md.

    python training/lightning_simclr.py --data ../shared/data/cifar10-jpeg.tar.gz \\
        --server http://127.0.0.1:50051 --dataset cifar10-5k --train-images 5000 --epochs 10

trains on a class-balanced subset of CIFAR-10's training split (seeded, as
train_cifar.py draws it), logs to a CSVLogger in --logs, and prints one line
per report as it arrives: its step, how long after that epoch's end it came,
and its headline numbers. Needs the venv of tests/lightning (torch, lightning,
onnx and the client).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any, Dict, List

import torch
import torch.nn.functional as F

import lightning as L

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from train import contrastive_loss  # noqa: E402
from train_cifar import Encoder, augment, load_cifar10, subset  # noqa: E402


class SimCLR(L.LightningModule):
    """SimCLR with the repository's CIFAR ResNet: two views of each image
    (train_cifar.augment, on uint8-valued float batches), InfoNCE over the
    batch's 2B embeddings (train.contrastive_loss). The loss and tau are
    hyper-parameters, where the callback reads them; ``backbone`` and
    ``projection_head`` are named as lightly names them."""

    def __init__(self, loss: str = "infonce", temperature: float = 0.2, lr: float = 1e-3, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        encoder = Encoder()
        self.backbone = encoder.backbone
        self.projection_head = encoder.head
        self.views: Any = None  # the views' generator, made where training runs (it does not pickle)

    def on_fit_start(self) -> None:
        # Each DDP process draws its own views.
        self.views = torch.Generator().manual_seed(self.hparams.seed + self.global_rank)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (images,) = batch  # float NCHW holding the pixels 0..255
        views = torch.cat([augment(images, self.views), augment(images, self.views)])
        z = F.normalize(self.projection_head(self.backbone(views)), dim=1)
        loss = contrastive_loss(z, self.hparams.loss, self.hparams.temperature, 0)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class Arrivals(L.Callback):
    """Prints each report as the callback logs it: its step, the seconds
    since that epoch ended, and its numbers."""

    def __init__(self, embedeval_callback: Any) -> None:
        self.cb = embedeval_callback
        self.epoch_end: Dict[int, float] = {}
        self.rows: List[Dict[str, Any]] = []
        self._seen = 0

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.epoch_end[int(trainer.global_step)] = time.monotonic()
        self.report(trainer)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        self.report(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.report(trainer)

    def report(self, trainer: Any) -> None:
        for p in self.cb.evaluations:
            if not p.done() or any(r["step"] == p.step for r in self.rows) or p.exception() is not None:
                continue
            r = p.result()
            row = {
                "step": p.step, "epoch": trainer.current_epoch,
                "after_epoch_end_s": round(time.monotonic() - self.epoch_end.get(p.step, time.monotonic()), 1),
                "export_s": round(p.export_seconds, 3),
                "uniformity": r.uniformity, "tolerance": r.tolerance, "knn_top1": r.knn.top1 if r.knn else None,
                "linear_top1": r.linear.top1 if r.linear else None,
            }
            self.rows.append(row)
            print(json.dumps(row), flush=True)


def main() -> None:
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    from embedeval.lightning import EmbedevalCallback

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="CIFAR-10 (as train_cifar.py --data takes it)")
    ap.add_argument("--server", default="http://127.0.0.1:50051")
    ap.add_argument("--dataset", required=True, help="the server's dataset to evaluate on")
    ap.add_argument("--train-images", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--logs", default="training/data/lightning")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the arrivals as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data, _ = load_cifar10(args.data)
    idx = subset(data["train_y"], args.train_images)
    images = torch.from_numpy(data["train_x"][idx]).permute(0, 3, 1, 2).float().contiguous()
    loader = DataLoader(TensorDataset(images), batch_size=args.batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    callback = EmbedevalCallback(args.server, args.dataset, preset="cifar10")
    arrivals = Arrivals(callback)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1,
                        logger=CSVLogger(args.logs, name="simclr-cifar10"), callbacks=[callback, arrivals],
                        enable_checkpointing=False, enable_progress_bar=False, log_every_n_steps=10)
    start = time.monotonic()
    trainer.fit(SimCLR(temperature=args.temperature), loader)
    print(f"run {callback.run_name}: {len(callback.evaluations)} checkpoints in {time.monotonic() - start:.0f} s; "
          f"keep {callback.checkpoint_to_keep.recommended if callback.checkpoint_to_keep else None}")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"run": callback.run_name, "rows": arrivals.rows}, indent=1))


if __name__ == "__main__":
    main()
