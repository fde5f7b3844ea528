"""``train:`` cases: the optimiser steps run on a case's module before its checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.casefile.format import CaseSpec, TrainSpec
from cnnbench.numerics.fill import make_tensor
from cnnbench.numerics.subject import Subject, first_output
from cnnbench.store.result import Result

__all__ = ["train"]

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
    "RMSprop": torch.optim.RMSprop,
    "Adagrad": torch.optim.Adagrad,
}


def _loss(kind: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "mse_sum":
        return ((out - target) ** 2).sum()
    if kind == "mse":
        return F.mse_loss(out, target)
    return F.cross_entropy(out, target)


def _optimizer(train_spec: TrainSpec, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = {"lr": train_spec.lr, "weight_decay": train_spec.weight_decay}
    if train_spec.momentum is not None:
        kwargs["momentum"] = train_spec.momentum
    return _OPTIMIZERS[train_spec.optimizer](params, **kwargs)


def train(subject: Subject, spec: CaseSpec, dtype: str, device: str, result: Result | None = None) -> None:
    """Run the case's optimiser steps on the subject's module; the loss before and after go to metrics."""
    assert spec.train is not None and subject.module is not None
    params = [p for p in subject.module.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"train: the module has no trainable parameters in {dtype}")
    target = make_tensor(spec.train.target, dtype, device)
    optimizer = _optimizer(spec.train, params)
    losses = []
    with torch.enable_grad():
        for _ in range(spec.train.steps):
            optimizer.zero_grad()
            loss = _loss(spec.train.loss, first_output(subject.fn(*subject.inputs)), target)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    if result is not None:
        result.metrics["loss_first"] = losses[0]
        result.metrics["loss_last"] = losses[-1]
