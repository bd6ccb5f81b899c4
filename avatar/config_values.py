"""Config values from text (the command line) and from YAML/JSON, checked against the field types."""
from __future__ import annotations

import typing
from typing import Any

from avatar.errors import AvatarError



_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_text(text: str, tp: Any, key: str) -> Any:
    """Parse a command-line string into a field of type `tp`."""
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if typing.get_origin(tp) is tuple:
            item = typing.get_args(tp)[0]
            return tuple(parse_text(part, item, key) for part in text.split(",") if part.strip())
        if typing.get_origin(tp) is typing.Literal:
            if text not in typing.get_args(tp):
                raise ValueError
            return text
        return tp(text)
    except ValueError:
        raise AvatarError(f"--{key} {text!r} is not a valid {_type_name(tp)}") from None


def coerce_value(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check a value read from YAML/JSON against the field type; ints are accepted for floats."""
    if typing.get_origin(tp) is tuple and isinstance(value, (list, tuple)):
        item = typing.get_args(tp)[0]
        return tuple(coerce_value(v, item, key, source) for v in value)
    if typing.get_origin(tp) is typing.Literal and value in typing.get_args(tp):
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool, float) and type(value) is tp:
        return value
    raise AvatarError(f"{source}: {key} = {value!r} is not a valid {_type_name(tp)}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "choice of " + ", ".join(map(str, typing.get_args(tp)))
    if typing.get_origin(tp) is tuple:
        return "comma-separated list"
    return {bool: "true/false", int: "integer", float: "number", str: "string"}.get(tp, str(tp))
