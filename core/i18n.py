"""Every string a user reads, in English and 简体中文, looked up by key."""
from __future__ import annotations

import functools
import json
from pathlib import Path

LOCALES = Path(__file__).with_name("locales")
LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"


@functools.cache
def strings(language: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))


def t(key: str, language: str = DEFAULT_LANGUAGE, **params) -> str:
    """The text for ``key`` in ``language`` (English when missing there), formatted with params. A
    message that wraps another (``detail_key`` and ``detail_params``) gets that one, translated, as ``detail``."""
    text = strings(language).get(key) or strings(DEFAULT_LANGUAGE).get(key)
    if text is None:
        raise KeyError(f"No text for {key!r}")
    if "detail_key" in params:
        params["detail"] = t(params["detail_key"], language, **params.get("detail_params", {}))
    return text.format(**params) if params else text


def t_message(message: dict | None, language: str) -> str:
    """A stored message ({"key", "params", "text"}) in the reader's language."""
    if not message:
        return ""
    try:
        return t(message["key"], language, **message.get("params", {}))
    except (KeyError, IndexError, ValueError):
        return message.get("text", "")


def ordinal(number: int, language: str) -> str:
    """1st, 2nd, 3rd, 11th … in English; the language's own form (a ``place`` key) elsewhere."""
    if language == "en":
        suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
        return f"{number}{suffix}"
    return t("place", language, n=number)


def duration(seconds: float, language: str) -> str:
    """A wait in words a student reads at a glance: seconds under a minute and a half, else minutes."""
    if seconds < 90:
        return t("time.seconds", language, n=max(1, round(seconds)))
    return t("time.minutes", language, n=round(seconds / 60))
