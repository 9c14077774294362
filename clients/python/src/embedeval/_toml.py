"""Model cards: TOML read with tomllib (tomli before Python 3.11), written by a
small emitter that covers what cards hold (tables, strings, numbers, booleans,
dates, arrays, inline tables)."""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

if sys.version_info >= (3, 11):
    import tomllib as _tomllib
else:  # pragma: no cover - exercised on older Pythons only
    import tomli as _tomllib

PathOrText = Union[str, "os.PathLike[str]"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def loads(text: str) -> Dict[str, Any]:
    """Parses TOML text."""
    return _tomllib.loads(text)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write a {type(v).__name__} to TOML: {v!r}")


def _table(lines: List[str], table: Mapping[str, Any], path: Tuple[str, ...]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in scalars:
        lines.append(f"{_key(str(k))} = {_value(v)}")
    for k, v in tables:
        _table(lines, v, path + (str(k),))


def dumps(table: Mapping[str, Any]) -> str:
    """TOML text of `table` (nested dicts become ``[section]`` tables)."""
    lines: List[str] = []
    _table(lines, table, ())
    return "\n".join(lines) + "\n"


def read_card(card: PathOrText) -> str:
    """The card's TOML text: `card` is a path to a model.toml, or TOML text."""
    if isinstance(card, os.PathLike):
        with open(card, encoding="utf-8") as f:
            return f.read()
    if isinstance(card, str):
        if "\n" not in card and len(card) < 4096 and os.path.isfile(card):
            with open(card, encoding="utf-8") as f:
                return f.read()
        return card
    raise TypeError(f"card must be a path or TOML text, got {type(card).__name__}")


def build_card(
    card: Optional[PathOrText] = None,
    *,
    loss: Optional[str] = None,
    loss_name: Optional[str] = None,
    temperature: Optional[float] = None,
    preset: Optional[str] = None,
    resize: Optional[str] = None,
    embedding_output: Optional[str] = None,
    features_output: Optional[str] = None,
    run: Optional[str] = None,
    step: Optional[int] = None,
    description: Optional[str] = None,
) -> str:
    """The card TOML for an upload, as the ``embedeval models add`` command
    builds it: the `card` (path or text, if any) with the given keys set
    over it (``[training] loss, loss_name, temperature, run, step``, ``[input] preset,
    resize``, ``[outputs] embedding, features``). A card without flags is
    sent as it is. The card must end up with a training loss."""
    if step is not None and (isinstance(step, bool) or int(step) != step or step < 0):
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    text = read_card(card) if card is not None else ""
    try:
        table = loads(text)
    except _tomllib.TOMLDecodeError as e:
        hint = "" if card is None or "\n" in str(card) else " (it is not a file either)"
        raise ValueError(f"the model card is not valid TOML{hint}: {e}") from e
    flags = [
        ("training", "loss", loss),
        ("training", "loss_name", loss_name),
        ("training", "temperature", None if temperature is None else float(temperature)),
        ("input", "preset", preset),
        ("input", "resize", resize),
        ("outputs", "embedding", embedding_output),
        ("outputs", "features", features_output),
        ("training", "run", run),
        ("training", "step", None if step is None else int(step)),
    ]
    changed = False
    for section, key, value in flags:
        if value is None:
            continue
        part = table.setdefault(section, {})
        if not isinstance(part, dict):
            raise ValueError(f"the model card's {section!r} is not a table")
        part[key] = value
        changed = True
    if description is not None:
        table["description"] = description
        changed = True
    training = table.get("training")
    if not (isinstance(training, dict) and "loss" in training):
        raise ValueError("the model needs its training loss: give loss= (and temperature=), or card= with [training] loss")
    if not changed:
        return text
    # Top-level keys first: a key after a [table] header would belong to it.
    ordered = {k: v for k, v in table.items() if not isinstance(v, dict)}
    ordered.update({k: v for k, v in table.items() if isinstance(v, dict)})
    return dumps(ordered)
