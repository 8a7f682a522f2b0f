"""Typed options: each stage's settings declared once, with the rules to check them.

Every stage owns one options dataclass (``DetectorOptions``, ``TrackingOptions``, ...) whose
fields are made with :func:`option`: the default, a description and the valid range or choices
travel with the field, so the same declaration validates values, documents the YAML and
declares the ROS parameters (with descriptors). Rules that span fields go in the class's
:meth:`Options.check`. ``config.RecognizerConfig`` composes the stages' options.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar


def option(default: Any, description: str, *, low: float | None = None, high: float | None = None,
           choices: tuple[str, ...] | None = None, read_only: bool = False) -> Any:
    """A dataclass field carrying what is needed to validate it and to declare it as a parameter.

    read_only: the value is used when the component is built (a model, a thread count), so a
    running node cannot change it.
    """
    return dataclasses.field(default=default, metadata={
        "description": description, "low": low, "high": high, "choices": choices,
        "read_only": read_only})


def is_option(f: dataclasses.Field) -> bool:
    """Fields made by :func:`option`; others (e.g. a model path for tests and tools) are not
    configuration and never become parameters."""
    return "description" in f.metadata


def check_value(name: str, value: Any, f: dataclasses.Field) -> Any:
    """The value converted to the option's type (an int is a valid float) after the type,
    range and choices checks; ValueError names the option."""
    default, meta = f.default, f.metadata
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = type(default)(value)
        low, high = meta.get("low"), meta.get("high")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{name} = {value} is outside [{low}, {high}]")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


class Options:
    """Base of the stages' options dataclasses: values are checked when the object is made
    (so ``dataclasses.replace`` checks too) and by :meth:`validate`.

    ``renamed`` maps an option's former name to its new one with a note: options renamed
    because their unit changed, so that an old config fails with the new name instead of
    being misread.
    """

    renamed: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "") -> None:
        """Check every option (converting ints given for floats), then the cross-field rules."""
        for f in option_fields(self):
            setattr(self, f.name, check_value(prefix + f.name, getattr(self, f.name), f))
        self.check()

    def check(self) -> None:
        """Rules between options; raise ValueError naming them. None by default."""


def option_fields(options: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(options) if is_option(f)]


def iter_options(config: Any, prefix: str = "") -> Iterator[tuple[str, Any, dataclasses.Field]]:
    """(dotted name, value, field) of every option in a dataclass and its nested groups."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from iter_options(value, f"{prefix}{f.name}.")
        elif is_option(f):
            yield f"{prefix}{f.name}", value, f


def set_option(config: Any, dotted: str, value: Any) -> None:
    """Set one option after checking type, range and choices; ValueError names the option.

    Rules between options are checked by the group's validate(), once all changes are in.
    """
    *groups, name = dotted.split(".")
    target = config
    for group in groups:
        target = getattr(target, group, None)
        if not dataclasses.is_dataclass(target):
            raise ValueError(f"unknown option '{dotted}'")
    fields = {f.name: f for f in option_fields(target)}
    if name not in fields:
        renamed = getattr(target, "renamed", {}).get(name)
        prefix = "".join(f"{group}." for group in groups)
        hint = f": renamed to {prefix}{renamed}" if renamed else ""
        raise ValueError(f"unknown option '{dotted}'{hint}")
    setattr(target, name, check_value(dotted, value, fields[name]))
