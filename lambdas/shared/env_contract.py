"""A function's environment as one typed contract: each variable's name, type, default and limits.

A contract is a frozen dataclass whose fields are declared with `variable(...)`. The stack and the
local runner write the variables with `Contract.variables(...)`; the handler reads and checks them
once, at cold start, with `Contract.from_environ()`. No other module names a variable, so a
missing or malformed one fails on the first invocation with every problem listed, not deep inside
a batch. (Plain dataclasses rather than pydantic: nothing more to package into the Lambdas.)
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

C = TypeVar("C", bound="EnvContract")

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class InvalidEnvironment(ValueError):
    """One or more variables of a function's environment are missing or malformed."""


def variable(name: str, *, default: Any = dataclasses.MISSING, check: Callable[[Any], str | None] | None = None) -> Any:
    """A field read from the environment variable `name`. `check(value)` returns an error message
    or None; without a default the variable is required."""
    return dataclasses.field(default=default, metadata={"env": name, "check": check})


def at_least(minimum: float) -> Callable[[Any], str | None]:
    return lambda value: None if value >= minimum else f"must be at least {minimum}, got {value}"


def above(minimum: float) -> Callable[[Any], str | None]:
    return lambda value: None if value > minimum else f"must be above {minimum}, got {value}"


def _parse(kind: Any, raw: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if kind in (int, float):
        return kind(raw)
    return raw


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _base_type(hint: Any) -> Any:
    """`int | None` -> int; plain types unchanged."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return inner
    return hint


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvContract:
    """Base of every contract; subclasses are `@dataclass(frozen=True, kw_only=True)`."""

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The variable behind one field, for the few places that must look one up by hand."""
        for f in dataclasses.fields(cls):
            if f.name == field_name:
                return f.metadata["env"]
        raise AttributeError(f"{cls.__name__} has no field {field_name!r}")

    @classmethod
    def variables(cls, **values: Any) -> dict[str, str]:
        """{variable name: text} for the given fields. Every required field must be given; None
        leaves an optional variable unset. Values may be CDK tokens: only their names are checked."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        missing = sorted(
            name for name, f in fields.items() if f.default is dataclasses.MISSING and values.get(name) is None
        )
        if unknown or missing:
            raise InvalidEnvironment(f"{cls.__name__}: unknown fields {unknown}, missing required fields {missing}")
        return {fields[name].metadata["env"]: _format(value) for name, value in values.items() if value is not None}

    @classmethod
    def from_environ(cls: type[C], environ: Mapping[str, str] | None = None) -> C:
        """Reads, converts and checks every field; raises InvalidEnvironment listing all problems."""
        environ = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        problems = []
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = environ.get(name, "")
            if raw == "":
                if f.default is dataclasses.MISSING:
                    problems.append(f"{name} is required")
                continue
            try:
                value = _parse(_base_type(hints[f.name]), raw)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            error = f.metadata["check"](value) if f.metadata["check"] else None
            if error:
                problems.append(f"{name} {error}")
            values[f.name] = value
        if problems:
            raise InvalidEnvironment(f"{cls.__name__}: " + "; ".join(problems))
        return cls(**values)
