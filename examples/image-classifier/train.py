"""Train the seed's CNN on digits, track it with gitml, register it, promote it if good enough.

Written as an MLflow script would be (`import gitml as mlflow`). Run it inside a Git repository:
    python train.py --epochs 4 --threshold 0.9
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

import gitml as mlflow
import gitml.pytorch
from gitml.models import infer_signature

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from data import load_digits_3x32  # noqa: E402
from model import Net  # noqa: E402


def evaluate(net: Net, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) on a held-out set."""
    net.eval()
    with torch.inference_mode():
        logits = net(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(1) == y).float().mean().item()
    return loss, accuracy


def main(argv: list[str] | None = None) -> int:
    """Train, log, register, promote. Returns 0 (promoted or not)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--threshold", type=float, default=0.9, help="accuracy needed for Production")
    p.add_argument("--model-name", default="digits-cnn")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x_train, y_train, x_test, y_test = load_digits_3x32(args.seed)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_test), torch.from_numpy(y_test)

    mlflow.set_experiment("image-classifier")
    with mlflow.start_run(run_name=f"cnn-lr{args.lr}") as run:
        mlflow.log_params(
            {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
             "dropout": args.dropout, "optimizer": "Adam", "dataset": "sklearn-digits-3x32",
             "train_size": len(x_train), "test_size": len(x_test)}
        )  # fmt: skip
        net = Net(num_classes=10, dropout=args.dropout)
        optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
        accuracy = 0.0
        for epoch in range(args.epochs):
            started = time.perf_counter()
            net.train()
            order = torch.randperm(len(xt))
            total = 0.0
            for i in range(0, len(xt), args.batch_size):
                idx = order[i : i + args.batch_size]
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            val_loss, accuracy = evaluate(net, xv, yv)
            mlflow.log_metrics(
                {"train_loss": total / len(xt), "val_loss": val_loss, "accuracy": accuracy},
                step=epoch,
            )
            print(
                f"  epoch {epoch + 1}/{args.epochs}: train_loss={total / len(xt):.4f} "
                f"val_loss={val_loss:.4f} accuracy={accuracy:.4f} ({time.perf_counter() - started:.1f} s)"
            )
        net.eval()
        example = x_test[:2]
        with torch.inference_mode():
            logits = net(torch.from_numpy(example)).numpy()
        info = gitml.pytorch.log_model(
            net,
            "model",
            code_paths=[str(HERE / "model.py")],
            input_example=example,
            signature=infer_signature(example, logits),
        )
        print(f"  logged the model: {info.model_uri}")
    version = mlflow.register_model(info.model_uri, args.model_name)
    print(f"  registered {args.model_name} version {version.version} (run {run.info.run_id})")
    if accuracy >= args.threshold:
        client = mlflow.MlflowClient()
        client.transition_model_version_stage(
            args.model_name, version.version, "Production", archive_existing_versions=True
        )
        print(
            f"  accuracy {accuracy:.4f} >= {args.threshold}: version {version.version} is now Production"
        )
    else:
        print(f"  accuracy {accuracy:.4f} < {args.threshold}: not promoted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
