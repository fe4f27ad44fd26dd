"""YAML -> frozen dataclasses, with an error for every unknown, missing or mistyped key.

A misspelled hyper-parameter that is silently ignored costs a day of compute; here it stops the
run with the file, the key and the keys that would have been accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from deeprc.errors import InputError

__all__ = ["add_flags", "build", "build_call", "flags_over_file", "load", "named_options"]

T = TypeVar("T")


def load(cls: type[T], path: Path) -> T:
    """Read a YAML file (``-``: standard input) into the dataclass ``cls``."""
    return build(cls, _read(Path(path)), "standard input" if str(path) == "-" else str(path))


def _read(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise InputError(f"config file {path} is not valid YAML: {exc}") from None
    return {} if data is None else data


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One command-line flag per field of ``cls``: its name (or ``metadata["flag"]``) with
    dashes, type, choices, help and default all taken from the field. A flag not given stays
    absent (``flags_over_file`` then keeps the file's or the field's value)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, name = hints[f.name], "--" + f.metadata.get("flag", f.name).replace("_", "-")
        shown = list(f.default) if isinstance(f.default, tuple) else f.default
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        kwargs["help"] = f"{f.metadata.get('help', '')} (default: {shown})".lstrip()
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is tuple:
            kwargs |= {"action": "append", "type": typing.get_args(hint)[0]}
        elif typing.get_origin(hint) is typing.Literal:
            kwargs["choices"] = typing.get_args(hint)
        else:
            kwargs["type"] = hint
        parser.add_argument(name, **kwargs)


def flags_over_file(cls: type[T], args: argparse.Namespace, path: Path | None) -> T:
    """``cls`` from the options file ``path`` (if any), with the flags of :func:`add_flags`
    that were given on the command line taking precedence."""
    data = _read(Path(path)) if path is not None else {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of {cls.__name__} keys, got {data!r}")
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name in args}
    where = f"{path} and the command line" if path is not None else "the command line"
    return build(cls, data | given, where)


def build(cls: type[T], data: Any, where: str) -> T:
    """Build ``cls`` from plain data; ``where`` prefixes error messages (file and key path)."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of {cls.__name__} keys, got {data!r}")
    if hasattr(cls, "moved_keys") and (moved := cls.moved_keys(data)):
        raise InputError(f"{where}: {moved}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{where}: unknown key {key!r}{hint}; {cls.__name__} accepts {sorted(fields)}"
            )
    missing = [
        name
        for name, f in fields.items()
        if name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InputError(f"{where}: missing required key(s) {missing} of {cls.__name__}")
    hints = typing.get_type_hints(cls)
    values = {key: _convert(hints[key], value, f"{where}: {key}") for key, value in data.items()}
    try:
        return cls(**values)
    except InputError as exc:  # a check across keys (__post_init__): say where it came from
        raise InputError(f"{where}: {exc}") from None


def build_call(cls: type, data: Any, where: str) -> dict[str, Any]:
    """The keyword arguments of ``cls(...)`` from plain data, checked against its constructor's
    signature as :func:`build` checks a dataclass's fields; returns all of them, defaults
    filled in (what a model file records). For parts chosen by name (encoders, evidence)."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of {cls.__name__} options, got {data!r}")
    params = {
        k: p for k, p in inspect.signature(cls).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and k != "name"
    }  # fmt: skip
    for key in data:
        if key not in params:
            close = difflib.get_close_matches(str(key), params, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"{where}: unknown key {key!r}{hint}; it accepts {sorted(params)}")
    missing = [k for k, p in params.items() if k not in data and p.default is p.empty]
    if missing:
        raise InputError(f"{where}: missing required key(s) {missing}")
    hints = typing.get_type_hints(cls.__init__) if params else {}
    return {
        key: _convert(hints.get(key, Any), data[key], f"{where}: {key}")
        if key in data
        else p.default
        for key, p in params.items()
    }


def named_options(entry: Any, registry: dict[str, type], where: str, example: str) -> dict:
    """An entry that picks a part by name from ``registry`` with its options (``{name: cnn,
    n_kernels: 32}``, or a name alone for its defaults), checked and completed with the part's
    defaults (:func:`build_call`); ``where`` prefixes errors."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or "name" not in entry:
        raise InputError(f"{where}: expected a mapping with a name, e.g. {example}; got {entry!r}")
    options = dict(entry)
    name = options.pop("name")
    if name not in registry:
        raise InputError(f"{where} {name!r} is not one of {sorted(registry)}")
    return {"name": name, **build_call(registry[name], options, f"{where} ({name})")}


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if origin is typing.Literal:
        if value not in args:
            raise InputError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise InputError(f"{where}: expected float, got {value!r}") from None
    if hint in (int, float, str, bool) and (
        not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))
    ):
        raise InputError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
