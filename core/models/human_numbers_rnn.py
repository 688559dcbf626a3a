"""Lesson 7's RNN on human numbers, Model0 to Model3: one embedding (the green arrow), one hidden
layer shared by every word (brown) and one output layer (blue), refactored step by step.

Each model reads a batch of word ids shaped (seq_len, bs), as the lesson's language-model loader
gives them. ``step`` is what happens to the hidden state when one word comes in; ``readout`` turns
a hidden state into scores for the next word. The forward passes are the lesson's: Model0 writes
its three steps out, Model1 is the same as a loop, Model2 predicts after every word, Model3 keeps
its hidden state from one batch to the next (truncated backpropagation through time).

Two changes from the notebook, both said on the page:
- Model0 starts from a zero state like the loop does, so that Model1 is exactly Model0 refactored
  (the notebook's Model0 skipped the brown arrow for the first word).
- Model3 normalises over the nh features. The notebook's ``BatchNorm1d(nh)`` on (seq, bs, nh)
  outputs normalises over the *batch* axis instead, and only ran because bs = nh = 64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, HIDDEN = 38, 64  # the lesson's nv and nh


class FeatureNorm(nn.BatchNorm1d):
    """BatchNorm over the last axis (the nh features) of activations shaped (..., nh)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


class Model0(nn.Module):
    """Lesson 7's Model0: the 4th word from the three before it, the three steps written out."""

    predicts_every_word = False
    keeps_state = False

    def __init__(self, nv: int = VOCAB, nh: int = HIDDEN):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)  # green arrow: input to hidden
        self.h_h = nn.Linear(nh, nh)  # brown arrow: hidden to hidden, the same for every word
        self.h_o = nn.Linear(nh, nv)  # blue arrow: hidden to output
        self.bn = nn.BatchNorm1d(nh)

    def initial_state(self, bs: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.zeros(bs, self.h_h.in_features, device=device)

    def step(self, h: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
        """A word comes in: its embedding is added to the state, which goes through the hidden layer."""
        return self.bn(F.relu(self.h_h(h + self.i_h(word))))

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return self.h_o(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (3, bs) -> (bs, nv)
        h = self.initial_state(x.shape[1], x.device)
        h = self.step(h, x[0])
        if x.shape[0] > 1:  # the last batch of an epoch may be shorter
            h = self.step(h, x[1])
        if x.shape[0] > 2:
            h = self.step(h, x[2])
        return self.readout(h)


class Model1(Model0):
    """Lesson 7's Model1: Model0 as a loop, so that it reads any number of words."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, bs) -> (bs, nv)
        h = self.initial_state(x.shape[1], x.device)
        for word in x:
            h = self.step(h, word)
        return self.readout(h)


class Model2(Model0):
    """Lesson 7's Model2: a prediction after every word, not only the last."""

    predicts_every_word = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, bs) -> (seq, bs, nv)
        h = self.initial_state(x.shape[1], x.device)
        outputs = []
        for word in x:
            h = self.step(h, word)
            outputs.append(self.readout(h))
        return torch.stack(outputs)


class Model3(nn.Module):
    """Lesson 7's Model3: the hidden state carries on from one batch to the next."""

    predicts_every_word = True
    keeps_state = True

    def __init__(self, nv: int = VOCAB, nh: int = HIDDEN):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)
        self.h_h = nn.Linear(nh, nh)
        self.h_o = nn.Linear(nh, nv)
        self.norm = FeatureNorm(nh)
        self.h: torch.Tensor | None = None  # the state left by the last batch

    def reset(self) -> None:
        """Forget the state (at the start of a text: each epoch, each validation)."""
        self.h = None

    def initial_state(self, bs: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.zeros(bs, self.h_h.in_features, device=device)

    def step(self, h: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
        return F.relu(self.h_h(h + self.i_h(word)))

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return self.h_o(self.norm(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, bs) -> (seq, bs, nv)
        fits = self.h is not None and self.h.shape[0] == x.shape[1]
        h = self.h if fits else self.initial_state(x.shape[1], x.device)
        states = []
        for word in x:
            h = self.step(h, word)
            states.append(h)
        self.h = h.detach()  # keep the state, drop its history: backprop stops at this batch's start
        return self.readout(torch.stack(states))


def model0(nv: int = VOCAB, nh: int = HIDDEN) -> Model0:
    """Lesson 7's Model0 (nv 38, nh 64)."""
    return Model0(nv, nh)


def model1(nv: int = VOCAB, nh: int = HIDDEN) -> Model1:
    """Lesson 7's Model1 (nv 38, nh 64)."""
    return Model1(nv, nh)


def model2(nv: int = VOCAB, nh: int = HIDDEN) -> Model2:
    """Lesson 7's Model2 (nv 38, nh 64)."""
    return Model2(nv, nh)


def model3(nv: int = VOCAB, nh: int = HIDDEN) -> Model3:
    """Lesson 7's Model3 (nv 38, nh 64)."""
    return Model3(nv, nh)
