"""Rendering staff-edited email templates: Jinja2 in the sandbox, inside ModReady's layout, HTML plus plain text.

Templates are written by marketing in the admin, so they run in `ImmutableSandboxedEnvironment`: no attribute that
starts with an underscore, no method that mutates a list or dict, no access to Python internals. The context is
plain dicts and strings built here, never model instances, so a template cannot reach the ORM either.
HTML is autoescaped; subject and text are not (they are not HTML). Undefined names fail loudly (StrictUndefined):
a typo must stop one email, not send "Hi ," to ten thousand customers.
Every render is bounded in time, work and size (automations.template_limits): a template that would hold the queue
or a web worker fails that one email with TemplateRenderLimitExceeded instead.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from django.utils.dateparse import parse_datetime
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError, nodes

from .render_context import sample_contexts
from .template_budget import RenderBudget, TemplateRenderLimitExceeded, render_bounded, run_with_budget
from .template_limits import BoundedSandboxedEnvironment

__all__ = [
    "TemplateRenderError",
    "TemplateRenderLimitExceeded",
    "render_email",
    "render_text",
    "template_compile_errors",
    "text_compile_errors",
]

LAYOUT_DIR = Path(__file__).parent / "jinja"
# Stripe amounts are in the smallest unit; for these currencies that unit is the whole one
# (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}

# One email's render: time and work for all four parts together, and the longest each part may be. Real templates
# render in about a millisecond; a drain claims up to 100 emails, so even 100 poisoned ones stay well inside the
# queue task's timeout. Gmail clips HTML past 102 KB; these limits only stop runaway templates.
RENDER_SECONDS = 0.5
RENDER_MAX_STEPS = 100_000
PART_MAX_LENGTH = {"subject": 2_000, "preheader": 2_000, "HTML body": 512_000, "text body": 256_000}


class TemplateRenderError(TemplateError):
    """A template failed while rendering (a Python error inside it, such as 1 + "a"), named after the template."""


def money(amount: Any, currency: str = "usd") -> str:
    """Minor units (Stripe's amounts) to a price: money(999, "usd") -> "$9.99", money(1500, "jpy") -> "1,500 JPY"."""
    currency = (currency or "usd").lower()
    zero_decimal = currency in ZERO_DECIMAL_CURRENCIES
    try:
        value = int(amount) / (1 if zero_decimal else 100)
    except (TypeError, ValueError, OverflowError):
        return ""
    number = f"{value:,.0f}" if zero_decimal else f"{value:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def format_date(value: Any, fmt: str = "%B %-d, %Y") -> str:
    """Dates in emails: ISO strings, datetimes and Unix timestamps all print as "March 3, 2026"."""
    if value in (None, ""):
        return ""
    if isinstance(value, int | float):
        try:
            value = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return str(value)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    if isinstance(value, datetime | date):
        return value.strftime(fmt)
    return str(value)


def _environment(*, autoescape: bool) -> BoundedSandboxedEnvironment:
    environment = BoundedSandboxedEnvironment(
        loader=FileSystemLoader(LAYOUT_DIR),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = money
    environment.filters["date"] = format_date
    environment.guard_filters()
    return environment


HTML_ENVIRONMENT = _environment(autoescape=True)
TEXT_ENVIRONMENT = _environment(autoescape=False)

# Staff write a part of the email, never a whole template: these tags would reach outside it. `{% extends %}` in a
# body used to be honoured so a body could fill the preheader block, and a body that merely *mentioned* it (even in a
# comment, `{# {% extends #}`) was rendered without the layout, so without the unsubscribe footer. Now every body is
# parsed on its own and placed into the layout's content block as a syntax tree, whatever its text says.
_FORBIDDEN_TAGS = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Block: "{% block %}",
}


def _parse_part(environment: BoundedSandboxedEnvironment, source: str) -> nodes.Template:
    """Parse one staff-written part alone and refuse what could escape it or recurse. Raises TemplateSyntaxError."""
    tree = environment.parse(source)
    for node_type, tag in _FORBIDDEN_TAGS.items():
        node = tree.find(node_type)
        if node is not None:
            raise TemplateSyntaxError(
                f"{tag} is not allowed: every email is rendered inside the ModReady layout"
                " (use the preheader field for the preview line)",
                node.lineno,
            )
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise TemplateSyntaxError("Recursive loops are not allowed", loop.lineno)
    for name in tree.find_all(nodes.Name):
        # `self.content()` renders the block the body is in, from inside it: recursion by another name.
        if name.ctx == "load" and name.name in ("self", "super"):
            raise TemplateSyntaxError(f"{name.name!r} is not available: blocks belong to the layout", name.lineno)
    _refuse_recursive_macros(tree)
    return tree


def _refuse_recursive_macros(tree: nodes.Template) -> None:
    macros = {macro.name: macro for macro in tree.find_all(nodes.Macro)}
    uses = {
        name: {ref.name for ref in macro.find_all(nodes.Name) if ref.ctx == "load" and ref.name in macros}
        for name, macro in macros.items()
    }

    def reaches(start: str) -> bool:
        seen, pending = set(), list(uses[start])
        while pending:
            name = pending.pop()
            if name == start:
                return True
            if name not in seen:
                seen.add(name)
                pending.extend(uses.get(name, ()))
        return False

    for name, macro in macros.items():
        if reaches(name):
            raise TemplateSyntaxError(f"The macro {name!r} calls itself: recursion is not allowed", macro.lineno)


def _in_layout(environment: BoundedSandboxedEnvironment, source: str, layout: str):
    # The comment keeps the body's last newline, which Jinja strips at the very end of a source, as it was when the
    # body was text inside the layout.
    body = _parse_part(environment, source + "{# end of the body #}")
    tree = environment.parse(f'{{% extends "{layout}" %}}{{% block content %}}{{% endblock %}}')
    tree.find(nodes.Block).body = body.body
    return environment.from_string(tree)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class _Compiled:
    subject: Any
    preheader: Any
    html: Any
    text: Any


_cache: dict[tuple, _Compiled] = {}


def _compile(*, subject: str, preheader: str, html: str, text: str) -> _Compiled:
    key = (subject, preheader, html, text)
    compiled = _cache.get(key)
    if compiled is None:
        if len(_cache) > 256:  # templates are few; this only bounds memory after many admin edits
            _cache.clear()
        compiled = _Compiled(
            subject=TEXT_ENVIRONMENT.from_string(_parse_part(TEXT_ENVIRONMENT, subject)),
            preheader=TEXT_ENVIRONMENT.from_string(_parse_part(TEXT_ENVIRONMENT, preheader)),
            html=_in_layout(HTML_ENVIRONMENT, html, "layout.html"),
            text=_in_layout(TEXT_ENVIRONMENT, text, "layout.txt"),
        )
        _cache[key] = compiled
    return compiled


def _budget() -> RenderBudget:
    return RenderBudget(seconds=RENDER_SECONDS, max_steps=RENDER_MAX_STEPS)


def _render_part(compiled_part, context: dict[str, Any], part: str) -> str:
    try:
        return render_bounded(compiled_part, context, max_length=PART_MAX_LENGTH[part], part=part)
    except TemplateRenderLimitExceeded as exc:
        exc.part = exc.part or part
        raise


def _render_parts(compiled: _Compiled, context: dict[str, Any], *, marketing: bool) -> RenderedEmail:
    context = {**context, "is_marketing": marketing}
    subject = " ".join(_render_part(compiled.subject, context, "subject").split())
    if not subject:
        raise TemplateError("The subject renders empty")
    context["subject"] = subject
    context["preheader"] = " ".join(_render_part(compiled.preheader, context, "preheader").split())
    html = _render_part(compiled.html, context, "HTML body")
    text = _render_part(compiled.text, context, "text body").strip()
    return RenderedEmail(subject=subject, html=html, text=text)


def _bounded(function, *, name: str, budget: RenderBudget | None = None):
    """Run a render under a fresh budget; every failure inside the template becomes a TemplateError naming it."""
    budget = budget or _budget()
    try:
        result = run_with_budget(budget, function)
    except TemplateRenderLimitExceeded as exc:
        raise TemplateRenderLimitExceeded(exc.reason, template_name=name, part=exc.part) from None
    except TemplateError:
        raise
    except (MemoryError, RecursionError) as exc:
        raise TemplateRenderLimitExceeded(type(exc).__name__, template_name=name) from None
    except Exception as exc:  # a Python error raised by the template's own expressions
        raise TemplateRenderError(f"template {name!r}: {type(exc).__name__}: {exc}") from exc
    if budget.exceeded:  # a limit hit inside code that swallowed the exception still fails the render
        raise TemplateRenderLimitExceeded(budget.exceeded, template_name=name)
    return result


def render_email(*, template, context: dict[str, Any]) -> RenderedEmail:
    """Render an EmailTemplate (or anything with name/subject/preheader/html_body/text_body/category) within the
    render limits. Raises jinja2.TemplateError: TemplateRenderLimitExceeded when a limit is hit."""
    compiled = _compile(
        subject=template.subject,
        preheader=getattr(template, "preheader", "") or "",
        html=template.html_body,
        text=template.text_body,
    )
    marketing = template.category == "marketing"
    name = getattr(template, "name", "") or "unsaved"
    return _bounded(lambda: _render_parts(compiled, context, marketing=marketing), name=name)


def _error_text(exc: Exception) -> str:
    line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
    return f"{type(exc).__name__}{line}: {exc.message if getattr(exc, 'message', None) else exc}"


def template_compile_errors(*, subject: str, html: str, text: str, preheader: str = "", name: str = "") -> dict:
    """What is wrong with a template, per field; empty when every part compiles, stays inside the layout and renders
    within the limits for each of several varied sample customers (not only the one a preview shows)."""
    errors: dict[str, str] = {}
    parts = {
        "subject": (TEXT_ENVIRONMENT, subject or "", "subject", None),
        "preheader": (TEXT_ENVIRONMENT, preheader or "", "preheader", None),
        "html_body": (HTML_ENVIRONMENT, html or "", "HTML body", "layout.html"),
        "text_body": (TEXT_ENVIRONMENT, text or "", "text body", "layout.txt"),
    }
    for field, (environment, source, part, layout) in parts.items():
        try:
            if layout:
                compiled = _in_layout(environment, source, layout)
            else:
                compiled = environment.from_string(_parse_part(environment, source))
        except TemplateError as exc:
            errors[field] = _error_text(exc)
            continue
        for sample in sample_contexts():
            context = {**sample, "subject": "Sample", "preheader": "", "is_marketing": True}
            try:
                _bounded(lambda c=compiled, x=context, p=part: _render_part(c, x, p), name=name or "unsaved")
            except TemplateError as exc:
                who = sample["customer"]["email"]
                errors[field] = f"{_error_text(exc)} (sample customer {who})"
                break
    return errors


def _compile_text_part(source: str):
    return TEXT_ENVIRONMENT.from_string(_parse_part(TEXT_ENVIRONMENT, source))


def render_text(*, source: str, context: dict[str, Any], name: str, max_length: int, part: str = "text") -> str:
    """One staff-written plain-text piece outside an email (a saved support reply), in the email templates' sandbox
    under the same render limits (time, work, sizes), its output stopped past `max_length` characters. Raises
    jinja2.TemplateError: TemplateSyntaxError, TemplateRenderError, TemplateRenderLimitExceeded."""
    compiled = _compile_text_part(source)
    return _bounded(
        lambda: render_bounded(compiled, context, max_length=max_length, part=part).strip(), name=name or "unsaved"
    )


def text_compile_errors(*, source: str, name: str, max_length: int, contexts: list[dict[str, Any]]) -> str:
    """What is wrong with a plain-text piece ("" when nothing): it must parse and render within the limits for each
    of `contexts` (varied sample customers, as email templates are checked with when they are saved)."""
    try:
        compiled = _compile_text_part(source)
    except TemplateError as exc:
        return _error_text(exc)
    for context in contexts:
        try:
            _bounded(
                lambda c=compiled, x=context: render_bounded(c, x, max_length=max_length, part="text"),
                name=name or "unsaved",
            )
        except TemplateError as exc:
            who = (context.get("customer") or {}).get("email") or "without an account"
            return f"{_error_text(exc)} (sample customer {who})"
    return ""
