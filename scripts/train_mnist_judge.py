"""Remake sample_data/mnist_judge.pt, the classifier that judges generated digits (core.gan.judge)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.gan.judge import JUDGE_FILE, save_judge, train_judge  # noqa: E402
from core.mnist_lab import cached_digits  # noqa: E402

model = train_judge()
valid = cached_digits(False)
with torch.no_grad():
    accuracy = (model(valid.images).argmax(dim=1) == valid.labels).float().mean().item()
save_judge(model)
print(f"saved {JUDGE_FILE} ({JUDGE_FILE.stat().st_size:,} bytes); validation accuracy {accuracy:.4f}")
