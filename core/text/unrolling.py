"""What a language model does word by word, for the page to show: its guesses along a text, the
hidden state after each word, and the proof that the written-out, looped and ``nn.RNN`` versions
of Lesson 7's network compute the same thing."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class Evaluating:
    """Eval mode (BatchNorm's running statistics) and, for a stateful model, a fresh hidden state;
    both undone afterwards (the state set aside is put back)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> None:
        self.was_training, self.saved = self.model.training, getattr(self.model, "h", None)
        self.model.eval()
        if self.model.keeps_state:
            self.model.reset()

    def __exit__(self, *_) -> None:
        if self.model.keeps_state:
            self.model.h = self.saved
        self.model.train(self.was_training)


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def next_word_guesses(model: nn.Module, ids: torch.Tensor, window: int = 3) -> tuple[list[int], list[float]]:
    """The model's guess for each next word of one text, and the probability it gave that guess.
    A model that predicts every word reads the text from its start (guesses for words 1 on); one that
    predicts once per sequence reads the ``window`` words before each word (guesses from word ``window`` on)."""
    ids = ids.to(device_of(model))
    with Evaluating(model):
        if model.predicts_every_word:
            scores = model(ids[:-1, None])[:, 0]  # (n - 1, nv)
        else:
            scores = model(ids.unfold(0, window, 1)[:-1].t())  # windows (window, n - window) -> (n - window, nv)
    probabilities, guesses = scores.float().softmax(-1).max(-1)
    return guesses.tolist(), probabilities.tolist()


@dataclass(frozen=True)
class Step:
    word: int
    embedding: np.ndarray  # (nh,): the green arrow's input for this word
    hidden: np.ndarray  # (layers, nh): the state after reading it
    probabilities: np.ndarray  # (nv,): the next word, as the output layer reads that state


@torch.no_grad()
def trace(model: nn.Module, ids: torch.Tensor, context: torch.Tensor | None = None) -> list[Step]:
    """Read ``ids`` one word at a time, keeping what each step computed; from a zero state, or from
    the state left by reading ``context`` first (as a model that keeps its state would have)."""
    steps, device = [], device_of(model)
    with Evaluating(model):
        h = model.initial_state(1, device)
        for word in ([] if context is None else context.to(device).view(-1, 1)):
            h = model.step(h, word)
        for word in ids.to(device).view(-1, 1):
            h = model.step(h, word)
            steps.append(Step(
                word=int(word), embedding=model.i_h(word)[0].cpu().numpy(),
                hidden=h.reshape(-1, h.shape[-1]).cpu().numpy(), probabilities=model.readout(h).softmax(-1)[0].cpu().numpy(),
            ))
    return steps


@torch.no_grad()
def written_out_against_loop(model0: nn.Module, model1: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model0's three written-out steps and Model1's loop, given Model0's weights, on the same (3, bs) words."""
    model1.load_state_dict(model0.state_dict())
    with Evaluating(model0), Evaluating(model1):
        return model0(x), model1(x)


@torch.no_grad()
def loop_against_torch_rnn(model3: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden states of Model3's loop and of ``nn.RNN`` holding the same weights, on (seq, bs) words.

    Model3's step is relu(W(h + E x) + b) = relu(W E x + b + W h): an ``nn.RNN`` with a relu whose input
    weights and hidden weights are both W, fed the embeddings E x. (Model4 uses nn.RNN's default tanh.)
    """
    nh, x = model3.h_h.in_features, x.to(device_of(model3))
    rnn = nn.RNN(nh, nh, nonlinearity="relu").to(x.device)
    rnn.weight_ih_l0.copy_(model3.h_h.weight)
    rnn.weight_hh_l0.copy_(model3.h_h.weight)
    rnn.bias_ih_l0.copy_(model3.h_h.bias)
    rnn.bias_hh_l0.zero_()
    h = model3.initial_state(x.shape[1], x.device)
    looped = []
    for word in x:
        h = model3.step(h, word)
        looped.append(h)
    by_torch, _ = rnn(model3.i_h(x), h.new_zeros(1, x.shape[1], nh))
    return torch.stack(looped), by_torch
