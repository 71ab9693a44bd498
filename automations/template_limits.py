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

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.runtime import Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from .template_budget import (
    MAX_CALL_DEPTH,
    MAX_INT_ARGUMENT,
    MAX_INT_BITS,
    budget_current,
    budget_tick,
    estimate_refuse,
    format_string_check,
    int_arguments_check,
    result_check,
    value_size,
    values_check,
)
from .template_format_limits import BoundedEscapeFormatter, BoundedFormatter, bounded_format_call, printf_check

# --- operators ----------------------------------------------------------------------------------------------------


def _estimate_binop(operator: str, left: Any, right: Any) -> None:
    sequence = (str, bytes, list, tuple)
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, sequence) and isinstance(count, int):
                estimate_refuse(value_size(seq, MAX_INT_ARGUMENT * 100) * max(count, 0), "a repetition")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            budget_current().fail(f"a number of more than {MAX_INT_BITS:,} bits")
    elif operator == "**":
        integers = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
        if integers and (left.bit_length() * right > MAX_INT_BITS * 2 or right > MAX_INT_BITS):
            budget_current().fail(f"a number of more than {MAX_INT_BITS:,} bits")
        if isinstance(left, float | int) and isinstance(right, float | int) and abs(right) > MAX_INT_BITS:
            budget_current().fail(f"an exponent above {MAX_INT_BITS:,}")
    elif operator == "%":
        if isinstance(left, str):
            format_string_check(left, braces=False)
            arguments = right if isinstance(right, tuple) else (right,)
            int_arguments_check(arguments, right if isinstance(right, dict) else {})
            estimate_refuse(len(left) + value_size(right, budget_current().max_value + 1), "a format")
        printf_check(left, right)  # widths and precisions taken from the arguments (`'%*s' % (n, 'a')`)
    elif operator == "+" and isinstance(left, sequence) and isinstance(right, sequence):
        limit = budget_current().max_value + 1
        estimate_refuse(value_size(left, limit) + value_size(right, limit), "a concatenation")


# --- calls and filters --------------------------------------------------------------------------------------------


def _estimate_join(separator: Any, items: list[Any], what: str) -> None:
    limit = budget_current().max_value + 1
    total = len(str(separator)) * len(items)
    for item in items:
        total += value_size(item, limit)
        if total > limit:
            break
    estimate_refuse(total, what)


def _estimate_replace(value: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(value, str | bytes) or not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return
    grows = len(new) - len(old)
    if grows > 0:
        occurrences = len(value) // max(len(old), 1) + 1
        if isinstance(count, int) and count >= 0:
            occurrences = min(occurrences, count)
        estimate_refuse(len(value) + occurrences * grows, "a replace")


def _estimate_string_method(name: str, value: str | bytes, args: tuple, kwargs: dict) -> tuple:
    """Checks for the str/bytes methods that can make their result much larger than the string itself."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int):
            estimate_refuse(max(len(value), width), f"{name}()")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            estimate_refuse(len(value) + value.count("\t" if isinstance(value, str) else b"\t") * tabsize, name)
    elif name == "join" and args:
        items = list(args[0])
        _estimate_join(value, items, "join()")
        args = (items, *args[1:])
    elif name == "replace" and len(args) >= 2:
        _estimate_replace(value, *args[:3])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        estimate_refuse(len(value) * max(longest, 1), "translate()")
    elif name in ("format", "format_map"):
        format_string_check(value, braces=True)
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
            estimate_refuse(max(len(str(value)), width), "center")
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        text = str(value)
        estimate_refuse(len(text) + (text.count("\n") + 1) * prefix, "indent")
    elif name == "wordwrap":
        width = rest[0] if rest else kwargs.get("width", 79)
        wrapstring = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        text = str(value)
        if isinstance(width, int):
            estimate_refuse(len(text) + (len(text) // max(width, 1) + 1) * len(str(wrapstring)), "wordwrap")
    elif name == "format":
        format_string_check(value, braces=False)
        values_check(*rest, *kwargs.values())
        printf_check(str(value), kwargs or tuple(rest))  # Jinja's filter is `value % (kwargs or args)`
    elif name == "urlize":
        extra = sum(len(str(v)) for v in (*rest[1:], *kwargs.values()) if isinstance(v, str))
        text = str(value)
        estimate_refuse(len(text) * 3 + len(text.split()) * extra, "urlize")
    elif name == "sum":
        start = rest[1] if len(rest) > 1 else kwargs.get("start", 0)
        if not isinstance(start, int | float):
            budget_current().fail("sum only adds numbers")
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
        budget_tick()
        leading, own = args[:context_arguments], args[context_arguments:]
        values_check(*own, *kwargs.values())
        if name not in _DATA_ARGUMENT_FILTERS:
            int_arguments_check(own[1:], kwargs)
        own = _filter_estimates(name, own, kwargs)
        return result_check(function(*leading, *own, **kwargs))

    return guarded


@pass_context
def _loop_budget(context, iterable: Any) -> Iterator[Any]:
    """Every `{% for %}` iterates through here: one step per iteration."""
    for item in iterable:
        budget_tick()
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
        budget = budget_current()
        budget.allocate(value_size(value, budget.max_value + 1))
        return value

    def concat(self, parts: Iterable[str]) -> str:  # type: ignore[override]
        # Joins the buffers of macros, `{% set %}` blocks, `{% filter %}` blocks and `caller()`.
        parts = list(parts)
        _estimate_join("", parts, "a block")
        return result_check("".join(parts))

    def concat_values(self, context, values: tuple) -> str:
        budget_tick()
        _estimate_join("", list(values), "a ~ concatenation")
        joined = markup_join(values) if context.eval_ctx.autoescape else str_join(values)
        return result_check(joined)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        budget_tick()
        _estimate_binop(operator, left, right)
        return result_check(super().call_binop(context, operator, left, right))

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
        budget = budget_current()
        budget_tick()
        values_check(*args, *kwargs.values())
        if not isinstance(__obj, Macro):
            name = getattr(__obj, "__name__", "")
            owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
            if isinstance(owner, str | bytes):
                args = _estimate_string_method(name, owner, args, kwargs)
            # Widths and lengths of the built-in types' methods ("a".ljust(n), (1).to_bytes(n)); numbers passed to
            # dict(), namespace() or a dict's get() are data.
            if isinstance(owner, str | bytes | int) and name not in ("format", "format_map"):
                int_arguments_check(args, kwargs)
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                budget.fail(f"calls nested more than {MAX_CALL_DEPTH} deep (recursion)")
            return result_check(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1
