"""How a language model reads one long token stream (Lesson 7), written out because it is the lesson.

The stream is cut into ``bs`` equal columns (``batchify``), each read from top to bottom; a batch
is the next ``seq_len`` rows of every column, and its target is the same rows one token further
on. So column j of one batch continues exactly where column j of the previous batch stopped: a
model that keeps its hidden state between batches (Model3 onwards) reads each column as one text.
"""
from __future__ import annotations

import functools
import math
from typing import Iterator

import numpy as np
import torch

# fastai v1's LanguageModelLoader: the first batch is bptt + MAX_EXTRA rows; after it, each length
# is drawn from N(bptt, 5), or from N(bptt / 2, 5) one time in 20, at least 5 and at most bptt + MAX_EXTRA.
MAX_EXTRA, P_FULL_BPTT, SPREAD, SHORTEST = 25, 0.95, 5, 5


def batchify(ids: torch.Tensor, bs: int) -> torch.Tensor:
    """(rows, bs): column j holds the j-th of ``bs`` equal parts of the stream, in order; the
    last ``len(ids) % bs`` tokens do not fit a row and are left out."""
    rows = len(ids) // bs
    return ids[:rows * bs].view(bs, rows).t()


def lesson_length(bptt: int, rng: np.random.Generator) -> int:
    """One randomised sequence length as the lesson's loader draws it (after its first batch)."""
    centre = bptt if rng.random() < P_FULL_BPTT else bptt / 2
    return min(max(SHORTEST, int(rng.normal(centre, SPREAD))), bptt + MAX_EXTRA)


def length_sample(bptt: int, n: int = 5000, seed: int = 0) -> list[int]:
    """Many draws of ``lesson_length``, for the distribution a page shows."""
    rng = np.random.default_rng(seed)
    return [lesson_length(bptt, rng) for _ in range(n)]


@functools.lru_cache(maxsize=64)
def mean_length(bptt: int) -> float:
    """The average of ``lesson_length`` (about 0.975 bptt), from many draws."""
    return float(np.mean(length_sample(bptt, n=4000, seed=1)))


class LanguageModelBatches:
    """(input, target) batches of shape (seq_len, bs), token ids, the target the input shifted by one.

    Every epoch covers the whole stream once, each input row in exactly one batch. Without
    ``randomise`` every batch is ``bptt`` rows (the last what is left). With it, the lengths are
    drawn as the lesson's loader draws them (its first batch bptt + 25, the last what is left); so
    that every epoch has the same number of steps (``len``, which a training loop counts on), a
    draw that comes out with too many batches joins its shortest ones to a neighbour, one with too
    few splits its longest in two.
    """

    def __init__(self, ids: torch.Tensor, bs: int, bptt: int, randomise: bool = False, seed: int = 0):
        if len(ids) < 2 * bs:
            raise ValueError(f"{len(ids)} tokens cannot fill {bs} columns of at least two tokens")
        self.data = batchify(ids, bs).contiguous()
        self.bs, self.bptt, self.randomise = bs, bptt, randomise
        self.input_rows = len(self.data) - 1  # the last row is only ever a target
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        if not self.randomise:
            return math.ceil(self.input_rows / self.bptt)
        first = self.bptt + MAX_EXTRA
        return 1 + max(0, round((self.input_rows - first) / mean_length(self.bptt)))

    def epoch_lengths(self) -> list[int]:
        """The sequence lengths of the next epoch (each call draws afresh when randomised)."""
        if not self.randomise:
            return [min(self.bptt, self.input_rows - start) for start in range(0, self.input_rows, self.bptt)]
        lengths = [min(self.bptt + MAX_EXTRA, self.input_rows)]
        covered = lengths[0]
        while covered < self.input_rows:
            lengths.append(min(lesson_length(self.bptt, self.rng), self.input_rows - covered))
            covered += lengths[-1]
        while len(lengths) > len(self):  # the shortest batch joins its shorter neighbour (the first stays)
            shortest = min(range(1, len(lengths)), key=lengths.__getitem__)
            neighbours = [j for j in (shortest - 1, shortest + 1) if 1 <= j < len(lengths)] or [0]
            left, right = sorted((shortest, min(neighbours, key=lengths.__getitem__)))
            lengths[left:right + 1] = [lengths[left] + lengths[right]]
        while len(lengths) < len(self):
            longest = max(range(1, len(lengths)), key=lengths.__getitem__, default=0)
            half = lengths[longest] // 2
            lengths[longest:longest + 1] = [half, lengths[longest] - half]
        return lengths

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        start = 0
        for length in self.epoch_lengths():
            yield self.data[start:start + length], self.data[start + 1:start + 1 + length]
            start += length

    def to(self, device: torch.device) -> "LanguageModelBatches":
        self.data = self.data.to(device)
        return self


def batch_of_each_cell(n_tokens: int, bs: int, lengths: list[int]) -> np.ndarray:
    """(rows, bs) array: which batch reads each cell of the batchified stream as input (-1: the
    last row, only ever a target)."""
    rows = n_tokens // bs
    index = np.full(rows, -1)
    index[:sum(lengths)] = np.repeat(np.arange(len(lengths)), lengths)
    return np.repeat(index[:, None], bs, axis=1)
