"""Size estimates for the format operations whose widths and precisions may come from their arguments.

`'{:>{}}'.format('a', N)`, `'%.*f' % (N, 1.0)` and `'%*s'|format(N, 'a')` each make N characters in one C call, and
N is an argument, not a digit in the format string. A check of the format string alone let N = 4x10^8 through
(4.3 GB in one render). So every format call is estimated field by field, with the widths and precisions it will
actually use, *before* it runs:

- printf style (`%` operator, Jinja's `format` filter, on str, Markup and bytes): the format string is parsed the
  way CPython parses it (mapping keys with nested parentheses, flags, `*` widths and precisions taken from the
  arguments in order, length modifiers) and each conversion's result is bounded;
- `str.format` / `str.format_map` on any string object: the sandbox's formatter resolves nested fields
  (`{:{}.{}}`) first; ours then bounds each field with its final spec before formatting it, and keeps a running
  total over the whole call, so a thousand fields of 99,999 characters are refused as surely as one of 10^8.

The estimates are upper bounds (generous for numbers: a float printed with `f` can take 309 digits), far above
what a real email uses and far below what would hurt the process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from markupsafe import Markup

from .template_budget import budget_current, value_size

MAX_WIDTH_DIGITS = 7  # a width or precision written with more digits is refused before it is even parsed
NUMBER_OVERHEAD = 420  # digits of the largest float in `f` notation with grouping, sign, exponent, prefix
ESCAPE_GROWTH = 6  # `"` becomes `&#34;`: what escaping can do to a value formatted into Markup
REPR_GROWTH = 10  # `repr` of a non-printable character: `\U0001f600`


def _fail(reason: str) -> None:
    budget_current().fail(reason)


def _limit() -> int:
    return budget_current().max_value


def _value_size(value: Any, *, conversion: str = "s") -> int:
    """Characters a value can take once converted, before width and precision."""
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() + NUMBER_OVERHEAD  # binary is the widest base
    if isinstance(value, float):
        return NUMBER_OVERHEAD
    size = value_size(value, _limit() + 1)
    return size * REPR_GROWTH + 2 if conversion in ("r", "a") else size


def _number(digits: str) -> int:
    if len(digits) > MAX_WIDTH_DIGITS:
        _fail(f"a format width or precision of {len(digits)} digits")
    return int(digits) if digits else 0


class _Total:
    """The running estimate of one format call; refuses as soon as it passes the limit."""

    def __init__(self, start: int, growth: int = 1) -> None:
        self.limit, self.growth, self.value = _limit(), growth, 0
        self.add(start)

    def add(self, size: int) -> None:
        self.value += size * self.growth
        if self.value > self.limit:
            _fail(f"a format would make more than {self.limit:,} characters")


# --- printf style -------------------------------------------------------------------------------------------------


def _printf_conversions(fmt: str):
    """(key, width, precision, conversion) for each conversion of a printf-style format, as CPython reads them
    (Objects/unicodeobject.c, PyUnicode_Format). Width and precision are '*', digits, or '' when absent."""
    position, end = 0, len(fmt)
    while True:
        position = fmt.find("%", position)
        if position < 0 or position + 1 >= end:
            return
        position += 1
        key = None
        if fmt[position] == "(":
            depth, start = 1, position + 1
            position += 1
            while depth and position < end:
                depth += {"(": 1, ")": -1}.get(fmt[position], 0)
                position += 1
            key = fmt[start : position - 1]
        while position < end and fmt[position] in "-+ #0":
            position += 1
        width = precision = ""
        if position < end and fmt[position] == "*":
            width, position = "*", position + 1
        else:
            while position < end and fmt[position].isdigit():
                width, position = width + fmt[position], position + 1
        if position < end and fmt[position] == ".":
            position += 1
            if position < end and fmt[position] == "*":
                precision, position = "*", position + 1
            else:
                while position < end and fmt[position].isdigit():
                    precision, position = precision + fmt[position], position + 1
        while position < end and fmt[position] in "hlL":
            position += 1
        conversion = fmt[position] if position < end else ""
        position += 1
        yield key, width, precision, conversion


def printf_check(fmt: Any, arguments: Any) -> None:
    """Refuse `fmt % arguments` before it runs when its result could pass the value limit."""
    if isinstance(fmt, bytes | bytearray):
        fmt = bytes(fmt).decode("latin-1")
    if not isinstance(fmt, str):
        return
    positional = arguments if isinstance(arguments, tuple) else (arguments,)
    mapping = arguments if isinstance(arguments, Mapping) else None
    total = _Total(len(fmt), ESCAPE_GROWTH if isinstance(fmt, Markup) else 1)
    index = 0

    def next_argument() -> Any:
        nonlocal index
        value = positional[index] if index < len(positional) else None
        index += 1
        return value

    for key, width, precision, conversion in _printf_conversions(fmt):
        if conversion == "%":
            total.add(1)
            continue
        sizes = []
        for written in (width, precision):
            if written == "*":
                supplied = next_argument() if key is None else None
                sizes.append(abs(supplied) if isinstance(supplied, int) else 0)
            else:
                sizes.append(_number(written))
        if key is not None:
            try:
                value = mapping[key] if mapping is not None else None
            except (KeyError, TypeError):
                value = None
        else:
            value = next_argument()
        total.add(max(sizes[0], _value_size(value, conversion=conversion) + sizes[1]))


# --- str.format ---------------------------------------------------------------------------------------------------

_NUMBERS = re.compile(r"\d+")


def format_field_size(value: Any, spec: str, conversion: str | None = None) -> int:
    """Characters `format(value, spec)` can make: every number in the (already resolved) spec may be a width or a
    precision, and a type's own spec language (strftime's `%c`) can expand each character."""
    numbers = sum(_number(digits) for digits in _NUMBERS.findall(spec))
    return _value_size(value, conversion=conversion or "s") + numbers + len(spec) * 32


class _BoundedFormatting:
    """Mixed into the sandbox's formatters: each field is estimated with its final spec before it is formatted."""

    _total: _Total

    def vformat(self, format_string, args, kwargs):
        growth = ESCAPE_GROWTH if isinstance(format_string, Markup) else 1
        self._total = _Total(len(format_string), growth)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value, conversion):
        if conversion in ("r", "a"):
            self._total.add(_value_size(value, conversion=conversion))
        return super().convert_field(value, conversion)

    def format_field(self, value, format_spec):
        self._total.add(format_field_size(value, str(format_spec)))
        return super().format_field(value, format_spec)


class BoundedFormatter(_BoundedFormatting, SandboxedFormatter):
    pass


class BoundedEscapeFormatter(_BoundedFormatting, SandboxedEscapeFormatter):
    pass


def bounded_format_call(method, formatter: _BoundedFormatting):
    """What `'...'.format` / `.format_map` is inside the sandbox: the call through our formatter (the same
    argument rules as jinja2.sandbox's wrapper)."""
    owner, format_map = method.__self__, method.__name__ == "format_map"

    def call(*args: Any, **kwargs: Any) -> str:
        if format_map:
            if kwargs:
                raise TypeError("format_map() takes no keyword arguments")
            if len(args) != 1:
                raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
            kwargs, args = args[0], ()
        return type(owner)(formatter.vformat(owner, args, kwargs))

    return call
