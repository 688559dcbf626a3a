"""Each page declares its controls once; widgets and the URL's query string derive from that.

A link carries a page's settings (an instructor sends a link, a student opens the same
setup). Junk in the link never breaks a page: it falls back to the default and is named.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Control:
    name: str  # query-string name and widget key
    default: Any
    choices: tuple | None = None
    accept: Callable[[Any], bool] | None = None  # further check on a parsed value

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; ValueError if it is not one this control takes."""
        kind = type(self.default)
        value = kind(float(text)) if kind is int and _is_whole(text) else kind(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(text)
        if self.choices is not None and value not in self.choices:
            raise ValueError(text)
        if self.accept is not None and not self.accept(value):
            raise ValueError(text)
        return value


def _is_whole(text: str) -> bool:
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return True


def read_query(controls: tuple[Control, ...], query: Mapping[str, str]) -> tuple[dict, list[str]]:
    """Values for every control (from the link where it holds a good one) and the names of
    link settings that were ignored because they were not good."""
    values, ignored = {}, []
    for control in controls:
        values[control.name] = control.default
        if control.name in query:
            try:
                values[control.name] = control.parse(query[control.name])
            except (TypeError, ValueError, OverflowError):
                ignored.append(control.name)
    return values, ignored


def to_query(controls: tuple[Control, ...], values: Mapping[str, Any]) -> dict[str, str]:
    """The query-string form of the settings that differ from the defaults."""
    return {
        c.name: _format(values[c.name]) for c in controls
        if c.name in values and values[c.name] != c.default
    }


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: the link keeps every digit
