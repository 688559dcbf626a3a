"""The two simulations of the bias lab (Lesson 13, ethics), small and seeded.

- Bias amplification (the lesson's cooking pictures: 67% of the training pictures of someone cooking
  show a woman, and the model says "woman" for 84% of them). A logistic regression sees whether a
  picture shows cooking and a weak cue of who is in it; where the cue is weak it leans on the
  co-occurrence and, since a classifier picks the likelier answer, says "woman" for more than 67%.
- A runaway feedback loop (predictive policing, Ensign et al. 2018): two districts with the same true
  rate of incidents; patrols record incidents only where they are sent; the rule that sends them
  decides whether the records run away from the truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.errors import UserError

LESSON_TRAIN_SHARE, LESSON_PREDICTED_SHARE = 0.67, 0.84
FEEDBACK_RULES = ("hotspot", "proportional", "per_patrol")


@dataclass(frozen=True)
class Amplification:
    """The pictures: ``share`` of cooking pictures show a woman (and 1 − share of the others); the cue of
    who is shown is N(+cue, 1) for a woman and N(−cue, 1) for a man (0.4: weak, 3: plain to see)."""

    share: float = LESSON_TRAIN_SHARE
    cue: float = 0.4
    pictures: int = 4000
    steps: int = 300
    lr: float = 0.5
    seed: int = 0

    def validated(self) -> "Amplification":
        if not 0.5 <= self.share < 1:
            raise UserError("bias.share_range", "The share of women among cooking pictures must be from 0.5 to "
                            "0.99 (got {value}).", value=self.share)
        if not 0 < self.cue <= 5:
            raise UserError("bias.cue_range", "The cue strength must be above 0 and at most 5 (got {value}).",
                            value=self.cue)
        return self


def pictures(setup: Amplification, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features (cooking or not, the cue), the label (1: a woman) and the cooking flag of ``setup.pictures``."""
    cooking = torch.rand(setup.pictures, generator=generator) < 0.5
    woman_share = torch.where(cooking, setup.share, 1 - setup.share)
    woman = (torch.rand(setup.pictures, generator=generator) < woman_share).float()
    cue = (2 * woman - 1) * setup.cue + torch.randn(setup.pictures, generator=generator)
    return torch.stack([cooking.float(), cue], dim=1), woman, cooking


def amplification(setup: Amplification) -> pd.DataFrame:
    """Train the classifier (full batch, plain gradient descent) and, after each step, the share of held-out
    cooking pictures it calls "woman", next to the true share in those pictures and its accuracy."""
    setup = setup.validated()
    generator = torch.Generator().manual_seed(setup.seed)
    train_x, train_y, _ = pictures(setup, generator)
    test_x, test_y, test_cooking = pictures(setup, generator)
    model = nn.Linear(2, 1)
    nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)  # starts knowing nothing
    optimizer = torch.optim.SGD(model.parameters(), lr=setup.lr)
    history = []
    for step in range(1, setup.steps + 1):
        optimizer.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(train_x).squeeze(1), train_y).backward()
        optimizer.step()
        with torch.no_grad():
            says_woman = model(test_x).squeeze(1) > 0
        history.append({"step": step, "predicted_share": says_woman[test_cooking].float().mean().item(),
                        "true_share": test_y[test_cooking].mean().item(),
                        "accuracy": (says_woman.float() == test_y).float().mean().item()})
    return pd.DataFrame(history)


@dataclass(frozen=True)
class Feedback:
    """Two districts, A and B, with true daily incident rates per patrol; ``patrols`` a day to share out
    by ``rule``: "hotspot" sends ``focus`` of them to the district with more recorded incidents so far,
    "proportional" shares them in proportion to the recorded incidents, and "per_patrol" (the correction)
    in proportion to recorded incidents per patrol sent, an estimate of the true rate that does not grow
    with attention. Day 0 splits them evenly."""

    rule: str = "hotspot"
    days: int = 60
    rate_a: float = 0.1
    rate_b: float = 0.1
    patrols: int = 100
    focus: float = 0.8
    seed: int = 0

    def validated(self) -> "Feedback":
        if self.rule not in FEEDBACK_RULES:
            raise UserError("bias.bad_rule", "Unknown rule {value}: use one of {allowed}.", value=self.rule,
                            allowed=", ".join(FEEDBACK_RULES))
        if not 0 <= self.days <= 1000:
            raise UserError("bias.days_range", "Simulate from 0 to 1000 days (got {value}).", value=self.days)
        for rate in (self.rate_a, self.rate_b):
            if not 0 < rate <= 1:
                raise UserError("bias.rate_range", "A district's rate must be above 0 and at most 1 (got {value}).",
                                value=rate)
        return self


def feedback_loop(setup: Feedback) -> pd.DataFrame:
    """One row per day: the patrols sent to each district, the incidents they recorded, the running
    totals and district A's share of the patrols and of the records."""
    setup = setup.validated()
    generator = np.random.default_rng(setup.seed)
    recorded, patrolled = np.zeros(2), np.zeros(2)
    true_rates = np.array([setup.rate_a, setup.rate_b])
    rows = []
    for day in range(setup.days + 1):
        share_a = _share_to_a(setup, recorded, patrolled) if day else 0.5
        sent = np.array([round(setup.patrols * share_a), setup.patrols - round(setup.patrols * share_a)])
        found = generator.binomial(sent, true_rates)
        recorded, patrolled = recorded + found, patrolled + sent
        rows.append({"day": day, "patrols_a": sent[0], "patrols_b": sent[1], "found_a": found[0], "found_b": found[1],
                     "recorded_a": recorded[0], "recorded_b": recorded[1], "patrol_share_a": sent[0] / setup.patrols,
                     "record_share_a": recorded[0] / max(recorded.sum(), 1)})
    return pd.DataFrame(rows)


def _share_to_a(setup: Feedback, recorded: np.ndarray, patrolled: np.ndarray) -> float:
    if setup.rule == "hotspot":
        if recorded[0] == recorded[1]:
            return 0.5
        return setup.focus if recorded[0] > recorded[1] else 1 - setup.focus
    # both +1: a district with nothing recorded yet still gets a patrol now and then
    weights = recorded + 1 if setup.rule == "proportional" else (recorded + 1) / (patrolled + 1)
    return float(weights[0] / weights.sum())
