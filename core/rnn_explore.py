"""What the RNN lab's page shows besides training: facts of the data, how batches are cut, the words a
model is stepped through, the equivalence proofs and the table of results. Plain data out; no Streamlit."""
from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import rnn_lab as lab
from core.data.human_numbers import (LESSON_VALID_TOKENS, LESSON_VOCAB_SIZE, SPECIAL_TOKENS, load, load_ids,
                                     number_words, position_of)
from core.models.human_numbers_rnn import Model0, Model1, Model3
from core.text.language_model import MAX_EXTRA, LanguageModelBatches, batch_of_each_cell, length_sample
from core.text.unrolling import loop_against_torch_rnn, written_out_against_loop

STEP_WORDS = 8  # how many words a model that predicts every word is stepped through
CONTEXT_WORDS = 24  # what a model that keeps its state has read before them


# ----- the data ----------------------------------------------------------------------------------------
def data_facts() -> dict:
    """The lesson's numbers, recomputed here, with what the lesson printed beside them."""
    train, valid, vocab = load()
    return {"train_tokens": len(train), "valid_tokens": len(valid), "vocab": len(vocab),
            "lesson_valid_tokens": LESSON_VALID_TOKENS, "lesson_vocab": LESSON_VOCAB_SIZE,
            "train_start": " ".join(train[:16]), "train_end": " ".join(train[-10:]),
            "valid_start": " ".join(valid[:16]), "valid_end": " ".join(valid[-10:]),
            "valid_ids_start": load_ids()[1][:20].tolist()}


def vocabulary_table() -> pd.DataFrame:
    """id, word and how often the training text has it; the special tokens first, as fastai ordered them."""
    train, _, vocab = load()
    counts = Counter(train)
    return pd.DataFrame({"id": range(len(vocab)), "token": vocab.itos,
                         "count": [counts.get(token, 0) for token in vocab.itos],
                         "special": [token in SPECIAL_TOKENS for token in vocab.itos]})


def number_as_tokens(n: int) -> tuple[list[str], list[int]]:
    """A number written out, and its words' ids."""
    words = number_words(n)
    return words, load()[2].numericalize(words).tolist()


# ----- how batches are cut -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPicture:
    batch_of_cell: np.ndarray  # (rows, bs): which batch reads each cell as input; -1: the last row
    words: np.ndarray  # (rows, bs) the words themselves
    lengths: list[int]  # each batch's sequence length, in order
    dropped: int  # tokens at the end of the stream that do not fill a row

    def start(self, batch: int) -> int:
        """The row where a batch (counted from 0) starts."""
        return sum(self.lengths[:batch])


def batch_picture(bs: int, bptt: int, randomise: bool, seed: int = 0) -> BatchPicture:
    """The validation stream (the lesson looks at that one) cut as ``LanguageModelBatches`` cuts it."""
    _, valid, vocab = load_ids()
    batches = LanguageModelBatches(valid, bs, bptt, randomise, seed)
    lengths = batches.epoch_lengths()
    words = np.array(vocab.itos, dtype=object)[batches.data.numpy()]
    return BatchPicture(batch_of_each_cell(len(valid), bs, lengths), words, lengths, len(valid) % bs)


def batch_text(picture: BatchPicture, batch: int, column: int) -> tuple[str, str]:
    """One column of one batch: its input words and its target words (the same, one word on)."""
    start, length = picture.start(batch), picture.lengths[batch]
    column_words = picture.words[:, column]
    return " ".join(column_words[start:start + length]), " ".join(column_words[start + 1:start + 1 + length])


def batch_table(picture: BatchPicture, batch: int, rows: int = 8, columns: int = 6) -> pd.DataFrame:
    """The first rows and columns of one batch's input, as words: each column reads down, as text."""
    start = picture.start(batch)
    shown = picture.words[start:start + min(rows, picture.lengths[batch]), :columns]
    return pd.DataFrame(shown, columns=[str(j) for j in range(shown.shape[1])],
                        index=[str(start + i) for i in range(len(shown))])


def lengths_drawn(bptt: int) -> tuple[list[int], int]:
    """Many lengths drawn as the lesson's loader draws them after its first batch, and that first one's."""
    return length_sample(bptt), bptt + MAX_EXTRA


# ----- stepping through a model ------------------------------------------------------------------------
def words_to_step(model: nn.Module, number: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The validation words a model is stepped through, from the start of ``number``, and the word after
    them (the last one to guess): three for the models that read three words and predict the fourth,
    ``STEP_WORDS`` for those that predict every word. Before them, for a model that keeps its state,
    the words it has read already (None for the others, which start each sequence from zero)."""
    _, valid, _ = load_ids()
    length = STEP_WORDS if model.predicts_every_word else 3
    start = position_of(number)
    context = valid[max(0, start - CONTEXT_WORDS):start] if model.keeps_state else None
    return context, valid[start:start + length + 1]


# ----- the same network three ways ----------------------------------------------------------------------
def equivalence(model0: Model0, model3: Model3, seed: int = 0) -> list[dict]:
    """Two proofs on real validation words: Model0 written out against Model1's loop with Model0's
    weights (64 windows of three words), and Model3's loop against ``nn.RNN`` holding its weights (20 words
    in 64 columns). Each row: what, the largest difference, and the first few numbers of each side."""
    _, valid, _ = load_ids()
    x = next(iter(LanguageModelBatches(valid, 64, 20)))[0]
    rows = []
    for what, (left, right) in (("written_out_vs_loop", written_out_against_loop(model0, Model1(*_sizes(model0)), x[:3])),
                                ("loop_vs_nn_rnn", loop_against_torch_rnn(model3, x))):
        rows.append({"what": what, "largest_difference": float((left - right).abs().max()), "numbers": left.numel(),
                     # the last word's numbers in the last column: the end of the computation
                     "left": left.reshape(-1, left.shape[-1])[-1, :4].tolist(),
                     "right": right.reshape(-1, right.shape[-1])[-1, :4].tolist()})
    return rows


def _sizes(model: nn.Module) -> tuple[int, int]:
    return model.i_h.num_embeddings, model.i_h.embedding_dim


# ----- results -----------------------------------------------------------------------------------------
def finished_runs_of(runs: list[dict], model_name: str):
    """The finished runs of one model that have an accuracy, in the order given (newest first)."""
    return (run for run in runs if run.get("state") == "finished" and (run.get("spec") or {}).get("model") == model_name
            and (run.get("result") or {}).get("accuracy") is not None)


def results_rows(runs: list[dict]) -> list[dict]:
    """One row per model: the lesson's accuracy, and this server's newest finished run of it (if any)."""
    rows = []
    for name in lab.MODELS:
        run = next(finished_runs_of(runs, name), None)
        result, spec = (run or {}).get("result") or {}, (run or {}).get("spec") or {}
        rows.append({"model": name, "lesson": lab.LESSON_ACCURACY[name], "here": result.get("accuracy"),
                     "run": (run or {}).get("id"), "preset": spec.get("preset"), "epochs": spec.get("epochs"),
                     "seconds": result.get("seconds")})
    return rows


def parameter_table(model: nn.Module) -> pd.DataFrame:
    """Each layer of a model (its name in the code, the PyTorch module in short) and its parameter count."""
    return pd.DataFrame([{"layer": name, "module": short_description(module),
                          "parameters": sum(p.numel() for p in module.parameters())}
                         for name, module in model.named_children()])


def short_description(module: nn.Module) -> str:
    """Embedding(38, 64), Linear(64, 38), GRU(64, 64, 2 layers), BatchNorm1d(64): the sizes that matter."""
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        return f"{kind}({module.in_features}, {module.out_features})"
    if isinstance(module, nn.Embedding):
        return f"{kind}({module.num_embeddings}, {module.embedding_dim})"
    if isinstance(module, nn.RNNBase):
        return f"{kind}({module.input_size}, {module.hidden_size}, {module.num_layers} layer{'s' * (module.num_layers > 1)})"
    if isinstance(module, nn.BatchNorm1d):
        return f"{kind}({module.num_features})"
    return kind


MODEL_HEADER = """import torch
import torch.nn.functional as F
from torch import nn

VOCAB, HIDDEN = 38, 64  # the lesson's nv and nh
CELLS = {"rnn": nn.RNN, "gru": nn.GRU}
"""


def model_source(model_name: str) -> str:
    """The code of the model on screen as it is in this repository, complete enough to run: the
    classes it uses and builds on, and the function that builds it with the lesson's configuration."""
    builder = lab.LANGUAGE_MODELS[model_name]
    model = builder()
    classes = [cls for cls in reversed(type(model).__mro__) if cls.__module__.startswith("core.")]
    parts = [type(module) for module in model.children() if type(module).__module__.startswith("core.")]
    return MODEL_HEADER + "\n\n" + "\n\n".join(inspect.getsource(part) for part in [*parts, *classes, builder])
