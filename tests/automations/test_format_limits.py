"""Widths and precisions passed as arguments to a format call, and everything else that pads, are bounded before
they allocate: no single render may grow the process by more than a few megabytes (issue 17).

Each payload asked for N characters in one C call; the old check read only digits written in the format string.
The memory a render takes is measured (tracemalloc's peak), not only the exception it raises."""

import tracemalloc
from unittest import mock

import pytest
from jinja2 import TemplateError

from automations.models import AutomationRule, AutomationStep, EmailQueueItem, EmailTemplate, QueueStatus
from automations.render_context import sample_context
from automations.rendering import TemplateRenderLimitExceeded, render_email, template_compile_errors
from automations.services.enrollments import enrollment_start
from customers.events import domain_event_publish
from tests.customers.factories import CustomerFactory

from .conftest import make_due, subscription_payload

N = 20_000_000  # 20 million characters (80 MB as UCS-4); the attack used 4x10^8. Any N above the limit is refused.
FEW_MEGABYTES = 8 * 1024 * 1024

PAYLOADS = {
    # widths and precisions supplied as arguments
    "format with an argument width": "{{ '{:>{}}'.format('a', @N@) }}",
    "format with nested width and precision": "{{ '{:{}.{}}'.format(1.0, @N@, @N@) }}",
    "format with an argument precision": "{{ '{:.{}f}'.format(1.0, @N@) }}",
    "format_map with a width from the mapping": "{{ '{a:>{w}}'.format_map({'a': 'x', 'w': @N@}) }}",
    "format on Markup": "{{ ('{:>{}}'|safe).format('a', @N@) }}",
    "format reached by attr": "{{ ('{:>{}}'|attr('format'))('a', @N@) }}",
    "format with the spec as an argument": "{{ '{:{}}'.format('a', '>@N@') }}",
    "printf filter with * precision": "{{ '%.*f'|format(@N@, 1.0) }}",
    "printf filter with * width": "{{ '%*s'|format(@N@, 'a') }}",
    "printf filter with * width on Markup": "{{ ('%*s'|safe)|format(@N@, 'a') }}",
    "printf operator with * width": "{{ '%-*s' % (@N@, 'a') }}",
    "printf on bytes with * width": "{{ '%*s'.encode() % (@N@, 'a'.encode()) }}",
    # many fields, each under the per-argument limit, together far over it
    "format with many wide fields": "{{ ('{0:>99999}' * 300).format('a') }}",
    "format_map with many wide fields": "{{ ('{a:>99999}' * 300).format_map({'a': 'x'}) }}",
    "printf with many * widths": "{{ ('%*s' * 300) % ((99999, 'a') * 300) }}",
    "printf with many mapping widths": "{{ ('%(a)99999s' * 300) % {'a': 'x'} }}",
    "printf filter with many * widths": "{{ ('%*s' * 300)|format(*((99999, 'a') * 300)) }}",
    "printf with * precisions on floats": "{{ ('%.*f' * 300) % ((99999, 1.0) * 300) }}",
    "printf with a parenthesised key": "{{ ('%(a(b))99999s' * 300) % {'a(b)': 'x'} }}",
    # everything else that pads or repeats
    "ljust over and over": "{% for i in range(300) %}{{ 'a'.ljust(99999) }}{% endfor %}",
    "wide characters over and over": (
        "{% for i in range(300) %}{{ '\U0001f600'.rjust(99999, '\U0001f600') }}{% endfor %}"
    ),
    "zfill": "{{ 'a'.zfill(@N@) }}",
    "center filter": "{{ 'a'|center(@N@) }}",
    "expandtabs": "{{ ('\t' * 400000).expandtabs(99999) }}",
    "indent": "{{ ('a\n' * 200000)|indent(99999) }}",
    "wordwrap": "{{ ('a ' * 200000)|wordwrap(1, wrapstring='x' * 99999) }}",
    "repetition": "{{ 'a' * @N@ }}",
}
PAYLOADS = {name: body.replace("@N@", str(N)) for name, body in PAYLOADS.items()}


def template(body, name="Padded"):
    return EmailTemplate(name=name, category="marketing", subject="Hi", html_body=body, text_body="x")


def bob_context():
    context = sample_context()
    return {**context, "customer": {**context["customer"], "email": "bob@example.com", "first_name": "Bob"}}


def memory_growth(function):
    """The most the process's traced memory grew above where it started while `function` ran, and its error."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        error = None
        try:
            function()
        except Exception as exc:  # the error is asserted by the caller
            error = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start, error


@pytest.mark.parametrize("body", PAYLOADS.values(), ids=PAYLOADS)
def test_a_padding_payload_is_refused_before_it_allocates(body):
    grew, error = memory_growth(lambda: render_email(template=template(body), context=bob_context()))

    assert isinstance(error, TemplateRenderLimitExceeded), error
    assert "exceeded the render limit" in str(error)
    assert grew < FEW_MEGABYTES, f"the render grew the process by {grew / 1e6:.0f} MB"


@pytest.mark.parametrize("body", PAYLOADS.values(), ids=PAYLOADS)
def test_the_save_time_check_refuses_the_padding_payloads(body):
    grew, _ = memory_growth(lambda: template_compile_errors(subject="Hi", html=body, text="x", name="Padded"))

    errors = template_compile_errors(subject="Hi", html=body, text="x", name="Padded")
    assert "exceeded the render limit" in errors["html_body"]
    assert grew < FEW_MEGABYTES


def test_ordinary_formatting_still_works():
    body = (
        "{{ '{} paid {:.2f} {}'.format(customer.first_name, 19.99, 'usd') }}|{{ '%05.1f|%-4s|'|format(2.5, 'y') }}"
        "{{ '%(n)s' % {'n': 3} }}|{{ '{n:>{w}}'.format_map({'n': 7, 'w': 3}) }}|{{ '%*d' % (4, 42) }}"
        "|{{ ('<b>{}</b>'|safe).format('<i>') }}|{{ '{:,}'.format(1234567) }}"
    )
    rendered = render_email(template=template(body), context=bob_context())

    assert "Bob paid 19.99 usd|002.5|y   |3|  7|  42|<b>&lt;i&gt;</b>|1,234,567" in rendered.html


# Skips the three sample customers of the save-time check, so it is saved; every real customer gets the payload.
SKIPS_THE_SAMPLES = (
    "{% if customer.email.endswith('@example.com') or customer.email.endswith('@example.org') "
    "or customer.email.endswith('@example.net') %}Hello{% else %}"
    + PAYLOADS["format with an argument width"]
    + "{% endif %}"
)


@pytest.mark.django_db
def test_a_payload_that_skips_the_samples_is_saved_but_refused_at_send_time_and_the_drain_goes_on(resend, drain):
    saved = EmailTemplate(
        name="Padded news", category="transactional", subject="News", html_body=SKIPS_THE_SAMPLES, text_body="x"
    )
    saved.full_clean()  # the save-time check cannot see it: the samples never reach the payload
    saved.save()
    padded = AutomationRule.objects.create(name="Padded news", trigger="subscription.created")
    AutomationStep.objects.create(rule=padded, order=1, template=saved)
    customers = CustomerFactory.create_batch(3, email=factory_email())
    with (
        mock.patch("customers.events._enqueue_dispatch"),
        mock.patch("automations.services.enrollments.queue_process_enqueue"),
    ):
        for customer in customers:
            event, _ = domain_event_publish(
                name="subscription.created",
                key=f"seed:{customer.pk}",
                customer=customer,
                payload=subscription_payload(f"sub_{customer.pk}"),
            )
            for rule in AutomationRule.objects.filter(trigger="subscription.created"):
                enrollment_start(rule=rule, event=event)
    make_due()

    grew, error = memory_growth(drain)

    assert error is None
    assert grew < 4 * FEW_MEGABYTES, f"the drain grew the process by {grew / 1e6:.0f} MB"  # the ORM's share included
    failed = EmailQueueItem.objects.filter(step__rule=padded)
    assert {item.status for item in failed} == {QueueStatus.FAILED} and failed.count() == 3
    assert all("exceeded the render limit" in item.last_error for item in failed)
    ordinary = EmailQueueItem.objects.exclude(step__rule=padded)
    assert ordinary.count() == 6 and {item.status for item in ordinary} == {QueueStatus.SENT}
    assert len(resend.delivered) == 6


def factory_email():
    import factory

    return factory.Sequence(lambda n: f"player{n}@customers.test")


def test_a_render_error_is_still_a_template_error():
    with pytest.raises(TemplateError):
        render_email(template=template(PAYLOADS["printf filter with * width"]), context=bob_context())
