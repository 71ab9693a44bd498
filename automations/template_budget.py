"""The render budget of the template sandbox (automations/template_limits.py): the limits, the per-render
`RenderBudget` held in a context variable, and the size checks every bounded operation asks before and after it runs.

Shared by the sandbox (template_limits) and its bounded string formatting (template_format_limits), which both import
it; it imports neither.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Namespace

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


def _cpu_seconds() -> float:
    """The CPU time of the rendering thread. The time limit is on work done, not on the wall clock: a render that
    waited for the CPU on a busy machine (a drain runs several senders; a bench or a deploy shares the cores) has
    done no more work, and failing its email for that would lose a good email. A runaway template burns CPU and is
    stopped all the same; a sandboxed template cannot sleep or wait on I/O, so it has no other way to take time."""
    return time.thread_time()


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
        self.deadline = _cpu_seconds() + self.seconds
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
        if _cpu_seconds() > self.deadline:
            self.fail(f"took more than {self.seconds:g} s of CPU time")

    def allocate(self, size: int) -> None:
        if size > self.max_value:
            self.fail(f"a value of more than {self.max_value:,} characters")
        self.allocated += size
        if self.allocated > self.max_allocated:
            self.fail(f"produced more than {self.max_allocated:,} characters in all")


_current: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar("template_render_budget", default=None)


def budget_current() -> RenderBudget:
    # Outside a render (Jinja folds constant expressions while compiling) the static checks still apply, with the
    # default sizes, on a throwaway budget.
    return _current.get() or RenderBudget()


def budget_tick() -> None:
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


def value_size(value: Any, limit: int) -> int:
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


def values_check(*values: Any) -> None:
    budget = budget_current()
    for value in values:
        if value_size(value, budget.max_value) > budget.max_value:
            budget.fail(f"a value of more than {budget.max_value:,} characters")


def result_check(result: Any) -> Any:
    budget = budget_current()
    if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_INT_BITS:
        budget.fail(f"a number of more than {MAX_INT_BITS:,} bits")
    if isinstance(result, str | bytes | bytearray | list | tuple | dict | set | frozenset):
        budget.allocate(value_size(result, budget.max_value + 1))
    return result


def estimate_refuse(estimate: int, what: str) -> None:
    budget = budget_current()
    if estimate > budget.max_value:
        budget.fail(f"{what} would make more than {budget.max_value:,} characters")


def int_arguments_check(args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARGUMENT:
            budget_current().fail(f"an argument above {MAX_INT_ARGUMENT:,} ({value})")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:[^{}]*\}")


def format_string_check(fmt: Any, *, braces: bool) -> None:
    """Widths and precisions written into a format string ("%0999999999d", "{:>999999999}") allocate that much."""
    if not isinstance(fmt, str):
        return
    specs = _BRACE_SPEC.findall(fmt) if braces else ["".join(m) for m in _PERCENT_SPEC.findall(fmt)]
    for spec in specs:
        for digits in re.findall(r"\d+", spec):
            if len(digits) > 6 or int(digits) > MAX_INT_ARGUMENT:
                budget_current().fail(f"a format width above {MAX_INT_ARGUMENT:,}")
