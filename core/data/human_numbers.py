"""Lesson 7's human numbers, written out here (no download): "one , two , … , nine thousand nine
hundred ninety nine", train 1-8,000 and valid 8,001-9,999, each one document opened by ``xxbos``.

The tokens and the vocabulary are fastai v1's (the lesson's ``TextList`` + ``label_for_lm``): the
comma is a token of its own; the vocabulary is the 8 special tokens of the time, then the training
words from the most to the least frequent (ties in order of first appearance), which gives the
lesson's numbers: 13,017 validation tokens, 38 words, and ``xxbos eight thousand one ,`` as
``[2, 18, 10, 11, 8]``.
"""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import torch

TRAIN_NUMBERS, VALID_NUMBERS = (1, 8000), (8001, 9999)
SPECIAL_TOKENS = ("xxunk", "xxpad", "xxbos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep")
LESSON_VALID_TOKENS, LESSON_VOCAB_SIZE = 13_017, 38

ONES = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """A number from 1 to 9,999 as the data set writes it: 8123 -> eight thousand one hundred twenty three."""
    if not 1 <= n <= 9999:
        raise ValueError(f"human numbers go from 1 to 9999, not {n}")
    words = []
    for size, name in ((1000, "thousand"), (100, "hundred")):
        if n >= size:
            words += [ONES[n // size - 1], name]
            n %= size
    if n >= 20:
        words.append(TENS[n // 10 - 2])
        n %= 10
    if n:
        words.append(ONES[n - 1])
    return words


def document(first: int, last: int) -> list[str]:
    """The tokens of one document: xxbos, then the numbers separated by commas."""
    tokens = ["xxbos"]
    for n in range(first, last + 1):
        if n > first:
            tokens.append(",")
        tokens += number_words(n)
    return tokens


@dataclass(frozen=True)
class Vocab:
    itos: tuple[str, ...]  # id -> token

    @functools.cached_property
    def stoi(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def numericalize(self, tokens: list[str]) -> torch.Tensor:
        unknown = self.stoi["xxunk"]
        return torch.tensor([self.stoi.get(token, unknown) for token in tokens], dtype=torch.long)

    def textify(self, ids) -> str:
        return " ".join(self.itos[int(i)] for i in ids)


def build_vocab(tokens: list[str], min_freq: int = 2) -> Vocab:
    """fastai v1's ``Vocab.create``: words by frequency, then the special tokens moved to the front."""
    words = [token for token, count in Counter(tokens).most_common() if count >= min_freq]
    words = [token for token in words if token not in SPECIAL_TOKENS]
    return Vocab(SPECIAL_TOKENS + tuple(words))


@functools.cache
def load() -> tuple[list[str], list[str], Vocab]:
    """(train tokens, valid tokens, vocabulary); the vocabulary comes from the training tokens."""
    train, valid = document(*TRAIN_NUMBERS), document(*VALID_NUMBERS)
    return train, valid, build_vocab(train)


@functools.cache
def load_ids() -> tuple[torch.Tensor, torch.Tensor, Vocab]:
    """The two token streams as ids (shared: callers must not write into them)."""
    train, valid, vocab = load()
    return vocab.numericalize(train), vocab.numericalize(valid), vocab


@functools.cache
def _valid_starts() -> dict[int, int]:
    starts, position = {}, 1  # after xxbos
    for n in range(VALID_NUMBERS[0], VALID_NUMBERS[1] + 1):
        starts[n] = position
        position += len(number_words(n)) + 1  # its words and the comma after them
    return starts


def position_of(n: int) -> int:
    """Where the number ``n`` (8,001 to 9,999) starts in the validation tokens."""
    if n not in _valid_starts():
        raise ValueError(f"the validation numbers go from {VALID_NUMBERS[0]} to {VALID_NUMBERS[1]}, not {n}")
    return _valid_starts()[n]
