"""``learn.summary()`` for any model: one row per layer with its output shape and parameters."""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn


def _is_reported(module: nn.Module) -> bool:
    """Leaves, and blocks with a forward of their own (a ResBlock's sum, a DenseBlock's concat)."""
    is_leaf = next(module.children(), None) is None
    return is_leaf or not isinstance(module, (nn.Sequential, nn.ModuleList))


def layer_table(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> pd.DataFrame:
    """Columns: layer (its path and type), output shape (without the batch), parameters."""
    rows: list[dict] = []
    handles = []
    for name, module in model.named_modules():
        if name and _is_reported(module):
            def record(mod, _inputs, output, name=name):
                own = sum(p.numel() for p in mod.parameters(recurse=False))  # a block's layers have rows of their own
                rows.append({"layer": f"{name} {type(mod).__name__}",
                             "output shape": "×".join(str(d) for d in output.shape[1:]),
                             "parameters": own})
            handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return pd.DataFrame(rows, columns=["layer", "output shape", "parameters"])
