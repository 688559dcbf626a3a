"""Run specs from plain dicts (a page's widgets, a stored run), for every lab the same way."""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Callable, TypeVar

from core.errors import UserError

Spec = TypeVar("Spec")


def spec_from_values(spec_class: type[Spec], values: dict, validate: Callable[[Spec], Spec],
                     prepare: Callable[[dict], dict] = dict) -> Spec:
    """A validated spec: unknown keys are ignored (an older or newer version stored them);
    values of the wrong kind become a UserError, not a crash. ``prepare`` turns the known
    values into the dataclass's arguments (a list of rows into a tuple, say)."""
    known = {f.name for f in fields(spec_class)}
    try:
        return validate(spec_class(**prepare({k: v for k, v in dict(values).items() if k in known})))
    except (TypeError, ValueError, OverflowError) as error:
        if isinstance(error, UserError):
            raise
        raise UserError("spec.bad", "These settings cannot be used: {error}", error=str(error)[:200]) from None


def readable_runs(runs: list[dict], spec_from_dict: Callable[[dict], object]) -> list[dict]:
    """The stored runs whose spec this version still understands, each with its spec's every
    field (defaults filled in); the others are left out of lists."""
    readable = []
    for run in runs:
        try:
            spec = spec_from_dict(run["spec"])
        except (UserError, TypeError, ValueError, KeyError):
            continue
        readable.append({**run, "spec": spec.to_dict()})
    return readable


def measured_rates(runs: list[dict], device: str, spec_from_dict: Callable[[dict], Spec],
                   key: Callable[[Spec], str], work: Callable[[Spec], float]) -> dict[str, float]:
    """Seconds per unit of ``work`` for each ``key`` (a lab's model), from the newest finished run of
    it on ``device`` (``runs`` newest first, as the store lists them); runs this version cannot read
    are passed over."""
    rates = {}
    for run in reversed(runs):  # oldest first, so that the newest has the last word
        result = run.get("result") or {}
        if run.get("state") != "finished" or result.get("device") != device or not result.get("seconds"):
            continue
        try:
            spec = spec_from_dict(run.get("spec") or {})
        except UserError:
            continue
        rates[key(spec)] = result["seconds"] / work(spec)
    return rates


def check_ranges(ranges: tuple[tuple[str, float, float, float], ...]) -> None:
    """A UserError naming the first (name, value, low, high) whose value lies outside [low, high]."""
    for name, value, low, high in ranges:
        if not low <= value <= high:
            raise UserError("spec.range", "{name} must be between {low} and {high} (got {value}).",
                            name=name, low=low, high=high, value=value)


def check_whole_numbers(spec: object, names: tuple[str, ...]) -> None:
    """A UserError naming the first of the spec's fields ``names`` that is not a whole number (True is not one)."""
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError("mnist.whole_number", "{name} must be a whole number (got {value}).", name=name,
                            value=value)


def estimate_from_rate(spec: Spec, runs: list[dict], device: str, spec_from_dict: Callable[[dict], Spec], kind: str,
                       work: Callable[[Spec], float], timed_rate: float | None,
                       model: Callable[[Spec], str] | None = None) -> float | None:
    """Expected seconds of ``spec`` on ``device``: its ``work`` times the seconds per unit of work of the newest
    finished run of ``kind`` there (of the same ``model(spec)``, when the lab's models differ in speed per unit
    of work; it includes everything), else ``timed_rate`` (the worker's timed step at start-up); None until one
    of them exists."""
    key = model or (lambda _: kind)
    measured = measured_rates(runs, device, spec_from_dict, key, work).get(key(spec))
    rate = measured if measured is not None else timed_rate
    return None if rate is None else rate * work(spec)


def is_number(value) -> bool:
    """A finite int or float (True and False are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_lr_is_number(lr) -> None:
    """A UserError unless the learning rate is a finite number; each lab checks its own range after this."""
    if not is_number(lr):
        raise UserError("check.lr_not_a_number", "The learning rate must be a number (got {lr}).", lr=lr)

