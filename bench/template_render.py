"""What the render limits cost: the default templates rendered with and without them, and how fast poison stops.

    bin/bench template_render [--renders 300]

Baseline: the same templates in a plain `ImmutableSandboxedEnvironment` (the sandbox before the limits), same
filters and layout, no budget. Bounded: `automations.rendering.render_email` as the queue calls it.
"""

import argparse
import time

from bench.harness import Table, django_on_fresh_database, median

POISON = {
    "nested range(100000) loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
    "email * 15,000,000": "{{ customer.email * 15000000 }}",
    "'a' * 10**8": "{{ 'a' * 10**8 }}",
}


def baseline_renderer():
    """The renderer as it was: plain sandbox, the layout wrapped around the body as text."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from automations.rendering import LAYOUT_DIR, format_date, money

    def environment(autoescape):
        env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(LAYOUT_DIR),
            autoescape=autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(money=money, date=format_date)
        return env

    html_env, text_env = environment(True), environment(False)
    cache = {}

    def wrap(body, layout):
        return f'{{% extends "{layout}" %}}{{% block content %}}{body}{{% endblock %}}'

    def render(template, context):
        key = template.pk
        if key not in cache:
            cache[key] = (
                text_env.from_string(template.subject),
                text_env.from_string(template.preheader or ""),
                html_env.from_string(wrap(template.html_body, "layout.html")),
                text_env.from_string(wrap(template.text_body, "layout.txt")),
            )
        subject, preheader, html, text = cache[key]
        context = {**context, "is_marketing": template.category == "marketing"}
        context["subject"] = " ".join(subject.render(context).split())
        context["preheader"] = " ".join(preheader.render(context).split())
        return html.render(context), text.render(context)

    return render


def time_renders(render, templates, context, renders):
    samples = []
    for _ in range(renders):
        for template in templates:
            started = time.perf_counter()
            render(template, context)
            samples.append((time.perf_counter() - started) * 1e6)
    return samples


def main(argv):
    parser = argparse.ArgumentParser(prog="bin/bench template_render")
    parser.add_argument("--renders", type=int, default=300, help="renders of each default template per variant")
    options = parser.parse_args(argv)
    django_on_fresh_database()

    from automations.models import EmailTemplate
    from automations.render_context import sample_context
    from automations.rendering import TemplateRenderLimitExceeded, render_email

    templates = list(EmailTemplate.objects.all())
    context = sample_context()
    baseline = baseline_renderer()

    def bounded(template, ctx):
        return render_email(template=template, context=ctx)

    for render in (baseline, bounded):  # warm the compile caches
        time_renders(render, templates, context, 2)
    base = median(time_renders(baseline, templates, context, options.renders))
    limited = median(time_renders(bounded, templates, context, options.renders))
    table = Table(
        f"Default templates ({len(templates)}), median of {options.renders * len(templates)} renders each",
        ["renderer", "median us/email", "ratio"],
    )
    table.add("plain sandbox (before)", base, 1.0)
    table.add("bounded sandbox", limited, limited / base)
    table.print()

    poison_table = Table("Poison templates (HTML body), time until refused", ["template", "ms", "reason"])
    for name, body in POISON.items():
        template = EmailTemplate(name=name, subject="Hi", html_body=body, text_body="x", category="transactional")
        started = time.perf_counter()
        try:
            render_email(template=template, context={**context, "customer": {**context["customer"], "email": "b@x"}})
            reason = "rendered (!)"
        except TemplateRenderLimitExceeded as exc:
            reason = exc.reason
        poison_table.add(name, (time.perf_counter() - started) * 1000, reason)
    poison_table.print()
