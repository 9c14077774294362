"""Model cards: TOML read with tomllib (tomli before Python 3.11), written by a
small emitter that covers what cards hold (tables, strings, numbers, booleans,
dates, arrays, inline tables)."""
from __future__ import annotations

import datetime as _dt
import decimal
import math
import numbers
import os
import re
import sys
import unicodedata
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

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


#: Longest tag key and value, and most tags on one model or request (the
#: server's limits).
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 1024
MAX_TAGS = 64
_TAG_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


def _float_text(f: float) -> str:
    """A float as the server prints it (Rust's ``{}``): the shortest text
    that reads back to it, never an exponent, no ``.0`` on whole numbers
    (0.2, 1, 300, 0.0001, NaN, inf)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    text = format(decimal.Decimal(repr(f)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def tag_text(value: Any) -> str:
    """A tag's value as text, as the server turns a card value into one:
    strings as they are, booleans ``true``/``false``, integers in decimal,
    floats as Rust prints them (``0.2``, ``1`` for 1.0, ``0.0001``), other
    values (arrays, tables, dates) as inline TOML."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _float_text(float(value))
    return _value(value)


def check_tags(tags: Optional[Mapping[str, Any]], what: str = "tags") -> Dict[str, str]:
    """`tags` (``None``: none) as ``{key: text}``, checked as the server
    checks them: at most :data:`MAX_TAGS`, each key 1 to
    :data:`MAX_TAG_KEY` characters of ``A-Z a-z 0-9 _ . -``, each value
    (a string, or a number or boolean, turned into text by
    :func:`tag_text`) at most :data:`MAX_TAG_VALUE` characters without
    control characters. TypeError for a `tags` that is not a mapping or
    a key that is not a string, ValueError for the rest."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"{what} must be a dict of key to value (e.g. {{'seed': '1'}}), got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{what}: {len(tags)} tags, at most {MAX_TAGS}")
    out: Dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str):
            raise TypeError(f"{what}: tag keys must be strings, got {key!r}")
        if len(key) > MAX_TAG_KEY or not _TAG_KEY.fullmatch(key):
            raise ValueError(f"{what}: tag key {key!r} must be 1 to {MAX_TAG_KEY} characters of A-Z a-z 0-9 _ . -")
        if value is None or isinstance(value, (bytes, bytearray, list, tuple, dict)):
            raise TypeError(f"{what}[{key!r}] must be a string (or a number), got {value!r}")
        text = tag_text(value)
        if len(text) > MAX_TAG_VALUE or any(unicodedata.category(c) == "Cc" for c in text):
            raise ValueError(
                f"{what}[{key!r}]: the value must be at most {MAX_TAG_VALUE} characters, none a control character"
            )
        out[key] = text
    return out


def _same_type(like: Any, text: str, key: str) -> Any:
    """`text` as a value of the type of the card's `like` (integer, float,
    boolean; anything else becomes the string), as ``--tag`` sets a
    ``[training]`` key the card has. ValueError when it does not parse."""

    def refuse(kind: str) -> ValueError:
        return ValueError(
            f"tags[{key!r}] = {text!r}: the card's [training] {key} is {_value(like)}, "
            f"so the tag must be {kind}"
        )

    if isinstance(like, bool):
        if text not in ("true", "false"):
            raise refuse("true or false")
        return text == "true"
    if isinstance(like, int):
        if not _INTEGER.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
            raise refuse("an integer")
        return int(text)
    if isinstance(like, float):
        if not _FLOAT.fullmatch(text):
            raise refuse("a number")
        return float(text)
    return text


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
    tags: Optional[Mapping[str, Any]] = None,
) -> str:
    """The card TOML for an upload, as the ``embedeval models add`` command
    builds it: the `card` (path or text, if any) with the given keys set
    over it (``[training] loss, loss_name, temperature, run, step``, ``[input] preset,
    resize``, ``[outputs] embedding, features``), then the `tags` as
    ``--tag k=v`` sets them: a key the card's ``[training]`` has takes the
    tag's value parsed to the type it has there (``seed = 1`` stays an
    integer, ``temperature = 0.2`` a float; ValueError when it does not
    parse), any other key goes into the card's ``[tags]`` table as a
    string. A card without flags or tags is sent as it is. The card must
    end up with a training loss."""
    if step is not None and (isinstance(step, bool) or int(step) != step or step < 0):
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    tag_texts = check_tags(tags)
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
    for key, text in tag_texts.items():
        training = table.get("training")
        if isinstance(training, dict) and key in training:
            training[key] = _same_type(training[key], text, key)
        else:
            extra = table.setdefault("tags", {})
            if not isinstance(extra, dict):
                raise ValueError("the model card's 'tags' is not a table")
            extra[key] = text
        changed = True
    if description is not None:
        table["description"] = description
        changed = True
    training = table.get("training")
    if not (isinstance(training, dict) and "loss" in training):
        raise ValueError(
            "the model needs its training loss: give loss= (and temperature=), or card= with [training] loss"
        )
    if not changed:
        return text
    # Top-level keys first: a key after a [table] header would belong to it.
    ordered = {k: v for k, v in table.items() if not isinstance(v, dict)}
    ordered.update({k: v for k, v in table.items() if isinstance(v, dict)})
    return dumps(ordered)
