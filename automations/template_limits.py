"""A Jinja2 sandbox whose every render is bounded in time, work and size.

The sandbox alone keeps templates away from Python internals, but not from the machine: `{{ 'a' * 10**8 }}` asks for
100 MB in one C call, two nested `range(100000)` loops are ten billion iterations, and a macro that calls itself
recurses until Python gives up. Marketing writes these templates, and one of them must never hold the email queue or
a web worker. So every render runs under a `RenderBudget`:

- work: every loop iteration, call, filter, intercepted operator and output chunk costs one step, and the render stops
  after `max_steps` of them or after `seconds` of wall time, whichever comes first. The clock is read at every step,
  so the deadline holds in any thread (a web request's preview as much as the queue worker) without signals;
- size: the operations that multiply their input (`*`, `**`, `%`, `join`, `replace`, `center`, `indent`, ...) have
  their result size estimated *before* they run and are refused past `max_value`; every result, every joined buffer
  (macros, `{% set %}` blocks) and every printed value is measured, and all of them together may not exceed
  `max_allocated` characters; integers may not grow past `MAX_INT_BITS`;
- output: the caller streams each part (`render_bounded`) and stops it past that part's own size limit.

Breaking any bound raises `TemplateRenderLimitExceeded`, a `jinja2.TemplateError`: callers that already fail one
email on a template error need nothing else. The checks run in Python between steps; a single C-level operation
runs to its end, which is why the multiplying ones are estimated before they run.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Macro, Namespace, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from .template_format_limits import BoundedEscapeFormatter, BoundedFormatter, bounded_format_call, printf_check

MAX_INT_BITS = 20_000  # about 6,000 digits; Python itself refuses to print more than 4,300
MAX_INT_ARGUMENT = 100_000  # widths, counts and lengths passed to a call or filter
MAX_CALL_DEPTH = 40  # macros calling macros; a template that recurses deeper is broken


class TemplateRenderLimitExceeded(TemplateRuntimeError):
    """A template asked for more time, work or memory than one email may take."""

    def __init__(self, reason: str, *, template_name: str | None = None, part: str | None = None) -> None:
        self.reason, self.template_name, self.part = reason, template_name, part
        where = f"template {template_name!r}" if template_name else "the template"
        if part:
            where += f" ({part})"
        super().__init__(f"{where} exceeded the render limit: {reason}")


@dataclass
class RenderBudget:
    seconds: float = 2.0
    max_steps: int = 200_000
    max_value: int = 500_000  # characters (or items) in any one string, list or other value
    max_allocated: int = 10_000_000  # characters produced by all measured operations of one render
    steps: int = 0
    allocated: int = 0
    depth: int = 0
    deadline: float = field(default=0.0)
    exceeded: str | None = None

    def start(self) -> RenderBudget:
        self.deadline = time.monotonic() + self.seconds
        return self

    def fail(self, reason: str):
        self.exceeded = self.exceeded or reason
        raise TemplateRenderLimitExceeded(self.exceeded)

    def tick(self, steps: int = 1) -> None:
        self.steps += steps
        if self.exceeded:
            raise TemplateRenderLimitExceeded(self.exceeded)
        if self.steps > self.max_steps:
            self.fail(f"more than {self.max_steps:,} operations")
        if time.monotonic() > self.deadline:
            self.fail(f"took longer than {self.seconds:g} s")

    def allocate(self, size: int) -> None:
        if size > self.max_value:
            self.fail(f"a value of more than {self.max_value:,} characters")
        self.allocated += size
        if self.allocated > self.max_allocated:
            self.fail(f"produced more than {self.max_allocated:,} characters in all")


_current: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar("template_render_budget", default=None)


def _budget() -> RenderBudget:
    # Outside a render (Jinja folds constant expressions while compiling) the static checks still apply, with the
    # default sizes, on a throwaway budget.
    return _current.get() or RenderBudget()


def _tick() -> None:
    budget = _current.get()
    if budget is not None:
        budget.tick()


def run_with_budget(budget: RenderBudget, function, *args, **kwargs):
    """Run `function` with `budget` as the current render's budget (a context variable: per thread, per task)."""
    token = _current.set(budget.start())
    try:
        return function(*args, **kwargs)
    finally:
        _current.reset(token)


def render_bounded(template, context: dict[str, Any], *, max_length: int, part: str) -> str:
    """Stream one template's output under the current budget, stopping past `max_length` characters."""
    budget = _current.get() or RenderBudget().start()
    chunks: list[str] = []
    size = 0
    stream = template.generate(context)
    try:
        for chunk in stream:
            size += len(chunk)
            if size > max_length:
                budget.fail(f"the {part} is longer than {max_length:,} characters")
            budget.tick()
            chunks.append(chunk)
    finally:
        stream.close()
    return "".join(chunks)


# --- sizes --------------------------------------------------------------------------------------------------------


def _size(value: Any, limit: int) -> int:
    """Characters `str(value)` would take, roughly, counting nested containers; stops counting past `limit`."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 1
    total = 0
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str | bytes | bytearray):
            total += len(current) + 2
        elif isinstance(current, dict):
            total += 2
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list | tuple | set | frozenset):
            total += 2
            stack.extend(current)
        elif isinstance(current, int) and not isinstance(current, bool):
            total += current.bit_length() // 3 + 1
        else:
            total += 1
        if total > limit:
            break
    return total


def _check_values(*values: Any) -> None:
    budget = _budget()
    for value in values:
        if _size(value, budget.max_value) > budget.max_value:
            budget.fail(f"a value of more than {budget.max_value:,} characters")


def _check_result(result: Any) -> Any:
    budget = _budget()
    if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_INT_BITS:
        budget.fail(f"a number of more than {MAX_INT_BITS:,} bits")
    if isinstance(result, str | bytes | bytearray | list | tuple | dict | set | frozenset):
        budget.allocate(_size(result, budget.max_value + 1))
    return result


def _refuse_estimate(estimate: int, what: str) -> None:
    budget = _budget()
    if estimate > budget.max_value:
        budget.fail(f"{what} would make more than {budget.max_value:,} characters")


def _check_int_arguments(args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARGUMENT:
            _budget().fail(f"an argument above {MAX_INT_ARGUMENT:,} ({value})")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:[^{}]*\}")


def _check_format_string(fmt: Any, *, braces: bool) -> None:
    """Widths and precisions written into a format string ("%0999999999d", "{:>999999999}") allocate that much."""
    if not isinstance(fmt, str):
        return
    specs = _BRACE_SPEC.findall(fmt) if braces else ["".join(m) for m in _PERCENT_SPEC.findall(fmt)]
    for spec in specs:
        for digits in re.findall(r"\d+", spec):
            if len(digits) > 6 or int(digits) > MAX_INT_ARGUMENT:
                _budget().fail(f"a format width above {MAX_INT_ARGUMENT:,}")


# --- operators ----------------------------------------------------------------------------------------------------


def _estimate_binop(operator: str, left: Any, right: Any) -> None:
    sequence = (str, bytes, list, tuple)
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, sequence) and isinstance(count, int):
                _refuse_estimate(_size(seq, MAX_INT_ARGUMENT * 100) * max(count, 0), "a repetition")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            _budget().fail(f"a number of more than {MAX_INT_BITS:,} bits")
    elif operator == "**":
        integers = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
        if integers and (left.bit_length() * right > MAX_INT_BITS * 2 or right > MAX_INT_BITS):
            _budget().fail(f"a number of more than {MAX_INT_BITS:,} bits")
        if isinstance(left, float | int) and isinstance(right, float | int) and abs(right) > MAX_INT_BITS:
            _budget().fail(f"an exponent above {MAX_INT_BITS:,}")
    elif operator == "%":
        if isinstance(left, str):
            _check_format_string(left, braces=False)
            arguments = right if isinstance(right, tuple) else (right,)
            _check_int_arguments(arguments, right if isinstance(right, dict) else {})
            _refuse_estimate(len(left) + _size(right, _budget().max_value + 1), "a format")
        printf_check(left, right)  # widths and precisions taken from the arguments (`'%*s' % (n, 'a')`)
    elif operator == "+" and isinstance(left, sequence) and isinstance(right, sequence):
        limit = _budget().max_value + 1
        _refuse_estimate(_size(left, limit) + _size(right, limit), "a concatenation")


# --- calls and filters --------------------------------------------------------------------------------------------


def _estimate_join(separator: Any, items: list[Any], what: str) -> None:
    limit = _budget().max_value + 1
    total = len(str(separator)) * len(items)
    for item in items:
        total += _size(item, limit)
        if total > limit:
            break
    _refuse_estimate(total, what)


def _estimate_replace(value: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(value, str | bytes) or not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return
    grows = len(new) - len(old)
    if grows > 0:
        occurrences = len(value) // max(len(old), 1) + 1
        if isinstance(count, int) and count >= 0:
            occurrences = min(occurrences, count)
        _refuse_estimate(len(value) + occurrences * grows, "a replace")


def _estimate_string_method(name: str, value: str | bytes, args: tuple, kwargs: dict) -> tuple:
    """Checks for the str/bytes methods that can make their result much larger than the string itself."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int):
            _refuse_estimate(max(len(value), width), f"{name}()")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _refuse_estimate(len(value) + value.count("\t" if isinstance(value, str) else b"\t") * tabsize, name)
    elif name == "join" and args:
        items = list(args[0])
        _estimate_join(value, items, "join()")
        args = (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        _estimate_replace(value, *args[:3])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        _refuse_estimate(len(value) * max(longest, 1), "translate()")
    elif name in ("format", "format_map"):
        _check_format_string(value, braces=True)
    return args


def _filter_estimates(name: str, args: tuple, kwargs: dict) -> tuple:
    """Per filter: refuse before running a filter whose result would be too large. Returns the (possibly
    materialised) arguments to call it with."""
    if not args:
        return args
    value, rest = args[0], args[1:]
    if name == "join":
        items = list(value)
        _estimate_join(rest[0] if rest else kwargs.get("d", ""), items, "join")
        return (items, *rest)
    if name == "replace" and len(rest) >= 2:
        _estimate_replace(str(value), str(rest[0]), str(rest[1]), *rest[2:3])
    elif name == "center":
        width = rest[0] if rest else kwargs.get("width", 80)
        if isinstance(width, int):
            _refuse_estimate(max(len(str(value)), width), "center")
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        text = str(value)
        _refuse_estimate(len(text) + (text.count("\n") + 1) * prefix, "indent")
    elif name == "wordwrap":
        width = rest[0] if rest else kwargs.get("width", 79)
        wrapstring = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        text = str(value)
        if isinstance(width, int):
            _refuse_estimate(len(text) + (len(text) // max(width, 1) + 1) * len(str(wrapstring)), "wordwrap")
    elif name == "format":
        _check_format_string(value, braces=False)
        _check_values(*rest, *kwargs.values())
        printf_check(str(value), kwargs or tuple(rest))  # Jinja's filter is `value % (kwargs or args)`
    elif name == "urlize":
        extra = sum(len(str(v)) for v in (*rest[1:], *kwargs.values()) if isinstance(v, str))
        text = str(value)
        _refuse_estimate(len(text) * 3 + len(text.split()) * extra, "urlize")
    elif name == "sum":
        start = rest[1] if len(rest) > 1 else kwargs.get("start", 0)
        if not isinstance(start, int | float):
            _budget().fail("sum only adds numbers")
    return args


# Filters whose numeric arguments are data, not sizes: checked by their own estimate instead.
_DATA_ARGUMENT_FILTERS = frozenset(
    {"format", "money", "date", "default", "d", "replace", "join", "round", "sum"}
    | {"select", "reject", "selectattr", "rejectattr", "map", "min", "max"}
)


def _guard_filter(name: str, function):
    context_arguments = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        _tick()
        leading, own = args[:context_arguments], args[context_arguments:]
        _check_values(*own, *kwargs.values())
        if name not in _DATA_ARGUMENT_FILTERS:
            _check_int_arguments(own[1:], kwargs)
        own = _filter_estimates(name, own, kwargs)
        return _check_result(function(*leading, *own, **kwargs))

    return guarded


@pass_context
def _loop_budget(context, iterable: Any) -> Iterator[Any]:
    """Every `{% for %}` iterates through here: one step per iteration."""
    for item in iterable:
        _tick()
        yield item


class _BoundedCodeGenerator(CodeGenerator):
    """Routes what the sandbox does not intercept through the budget: loop iterations and `~` concatenation."""

    def visit_Template(self, node, frame=None):
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_loop_budget", [], [], None, None, lineno=loop.iter.lineno)
        return super().visit_Template(node, frame)

    @optimizeconst
    def visit_Concat(self, node, frame):
        self.write("environment.concat_values(context, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class BoundedSandboxedEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("finalize", self._finalize)
        super().__init__(*args, **kwargs)
        # Lorem ipsum has no place in an email and takes its sizes as arguments.
        self.globals.pop("lipsum", None)
        self.filters["_loop_budget"] = _loop_budget

    def guard_filters(self) -> None:
        """Wrap every filter (call after adding custom ones): steps, argument checks, size estimates."""
        for name, function in list(self.filters.items()):
            if name != "_loop_budget" and not getattr(function, "_render_guarded", False):
                guarded = _guard_filter(name, function)
                guarded._render_guarded = True
                self.filters[name] = guarded

    @staticmethod
    def _finalize(value: Any) -> Any:
        # What `{{ ... }}` prints: a list holding the same long string 50,000 times is small in memory and huge
        # as text, so measure before Jinja turns it into a string (and, escaped, into a new copy: counted).
        budget = _budget()
        budget.allocate(_size(value, budget.max_value + 1))
        return value

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        # Joins the buffers of macros, `{% set %}` blocks, `{% filter %}` blocks and `caller()`.
        parts = list(parts)
        _estimate_join("", parts, "a block")
        return _check_result("".join(parts))

    def concat_values(self, context, values: tuple) -> str:
        _tick()
        _estimate_join("", list(values), "a ~ concatenation")
        joined = markup_join(values) if context.eval_ctx.autoescape else str_join(values)
        return _check_result(joined)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _estimate_binop(operator, left, right)
        return _check_result(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any):
        # The sandbox hands out str.format / format_map of any string object wrapped around its own formatter; ours
        # bounds every field with its resolved spec (nested `{:{}.{}}` fields included) before formatting it.
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        owner = value.__self__
        if isinstance(owner, Markup):
            formatter = BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = BoundedFormatter(self)
        return functools.update_wrapper(bounded_format_call(value, formatter), value)

    def call(__self, __context, __obj, *args, **kwargs):
        budget = _budget()
        _tick()
        _check_values(*args, *kwargs.values())
        if not isinstance(__obj, Macro):
            name = getattr(__obj, "__name__", "")
            owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
            if isinstance(owner, str | bytes):
                args = _estimate_string_method(name, owner, args, kwargs)
            # Widths and lengths of the built-in types' methods ("a".ljust(n), (1).to_bytes(n)); numbers passed to
            # dict(), namespace() or a dict's get() are data.
            if isinstance(owner, str | bytes | int) and name not in ("format", "format_map"):
                _check_int_arguments(args, kwargs)
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                budget.fail(f"calls nested more than {MAX_CALL_DEPTH} deep (recursion)")
            return _check_result(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1
