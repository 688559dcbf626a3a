"""The map of labs: what Home shows, which page each opens, and which runner trains it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    key: str  # i18n keys lab.<key>.title and lab.<key>.what
    lesson: str
    page: str | None  # the page file under pages/, None while the lab is not built yet
    icon: str


LABS = (
    Lab("mnist", "Part 1 · Lesson 7", "pages/mnist_lab.py", "🔢"),
    Lab("schedules", "Part 2 · Lesson 13", None, "📈"),
    Lab("convolutions", "Part 2 · Lesson 12", None, "🧮"),
    Lab("style", "Part 2 · Lesson 13", None, "🎨"),
    Lab("gans", "Part 2 · Lesson 12", None, "🌀"),
    Lab("restoration", "Part 1 · Lesson 7", None, "🪄"),
    Lab("rnn", "Part 1 · Lesson 7", None, "🔁"),
    Lab("bias", "Part 2 · Lesson 13", None, "⚖️"),
    Lab("darknet", "Part 2 · Lesson 12", None, "🏎️"),
)

# Spec kind -> "module:function" that a worker process imports to train it.
RUNNERS = {"mnist": "core.mnist_lab:run_mnist"}
