"""Lesson 7's Model4 and Model5: the loop of Model3 handed to PyTorch (``nn.RNN``, then a 2-layer
``nn.GRU``), with the same embedding, output layer and kept hidden state.

As for Model3, the normalisation is over the nh features (see ``human_numbers_rnn``).
"""
from __future__ import annotations

import torch
from torch import nn

from core.models.human_numbers_rnn import HIDDEN, VOCAB, FeatureNorm

CELLS = {"rnn": nn.RNN, "gru": nn.GRU}


class TorchRNN(nn.Module):
    """Lesson 7's Model4 (``nn.RNN``, one layer) and Model5 (``nn.GRU``, two layers)."""

    predicts_every_word = True
    keeps_state = True

    def __init__(self, nv: int = VOCAB, nh: int = HIDDEN, cell: str = "gru", layers: int = 2):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)
        self.rnn = CELLS[cell](nh, nh, layers)  # the loop over the words, done by PyTorch
        self.h_o = nn.Linear(nh, nv)
        self.norm = FeatureNorm(nh)
        self.h: torch.Tensor | None = None  # (layers, bs, nh): the state left by the last batch

    def reset(self) -> None:
        self.h = None

    def initial_state(self, bs: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.zeros(self.rnn.num_layers, bs, self.rnn.hidden_size, device=device)

    def step(self, h: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
        """One word through every layer: (layers, bs, nh) in and out."""
        return self.rnn(self.i_h(word)[None], h)[1]

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Scores for the next word from a state (layers, bs, nh): its top layer's."""
        return self.h_o(self.norm(h[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (seq, bs) -> (seq, bs, nv)
        fits = self.h is not None and self.h.shape[1] == x.shape[1]
        outputs, h = self.rnn(self.i_h(x), self.h if fits else self.initial_state(x.shape[1], x.device))
        self.h = h.detach()
        return self.h_o(self.norm(outputs))


def model4(nv: int = VOCAB, nh: int = HIDDEN) -> TorchRNN:
    """Lesson 7's Model4: nn.RNN (nv 38, nh 64)."""
    return TorchRNN(nv, nh, cell="rnn", layers=1)


def model5(nv: int = VOCAB, nh: int = HIDDEN) -> TorchRNN:
    """Lesson 7's Model5: a 2-layer nn.GRU (nv 38, nh 64)."""
    return TorchRNN(nv, nh, cell="gru", layers=2)
