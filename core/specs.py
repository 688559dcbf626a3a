"""Run specs from plain dicts (a page's widgets, a stored run), for every lab the same way."""
from __future__ import annotations

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
