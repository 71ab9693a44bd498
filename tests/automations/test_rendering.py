"""Staff-written templates: sandboxed, escaped, inside the ModReady layout, with a plain-text alternative."""

import pytest
from django.core.checks import run_checks
from jinja2.exceptions import SecurityError

from automations.models import EmailTemplate
from automations.render_context import sample_context
from automations.rendering import render_email


def template(**fields):
    defaults = {
        "subject": "Hi {{ customer.first_name }}",
        "html_body": "<p>x</p>",
        "text_body": "x",
        "category": "marketing",
    }
    return EmailTemplate(name="t", **{**defaults, **fields})


def test_templates_cannot_reach_python_internals():
    with pytest.raises(SecurityError):
        render_email(template=template(html_body="{{ customer.__class__.__mro__ }}"), context=sample_context())
    with pytest.raises(SecurityError):
        render_email(template=template(text_body="{{ event.update({'x': 1}) }}"), context=sample_context())


def test_html_is_escaped_and_text_is_not():
    context = {**sample_context(), "customer": {**sample_context()["customer"], "first_name": "<b>Bob</b> & Co"}}
    rendered = render_email(
        template=template(html_body="<p>Hi {{ customer.first_name }}</p>", text_body="Hi {{ customer.first_name }}"),
        context=context,
    )
    assert "<p>Hi &lt;b&gt;Bob&lt;/b&gt; &amp; Co</p>" in rendered.html
    assert rendered.text.startswith("Hi <b>Bob</b> & Co")
    assert rendered.subject == "Hi <b>Bob</b> & Co"


def test_every_email_is_in_the_branded_layout_with_a_footer_matching_its_category():
    marketing = render_email(template=template(), context=sample_context())
    service = render_email(template=template(category="transactional"), context=sample_context())
    assert "ModReady" in marketing.html and "<!DOCTYPE html>" in marketing.html
    assert "Unsubscribe" in marketing.html and sample_context()["unsubscribe_url"] in marketing.text
    assert "Unsubscribe" not in service.html and "service email about your ModReady account" in service.text


@pytest.mark.django_db
def test_default_templates_render_for_the_sample_customer():
    for saved in EmailTemplate.objects.all():
        saved.full_clean()
        rendered = render_email(template=saved, context=sample_context())
        assert rendered.subject and "Alex" in rendered.text + rendered.subject
    assert EmailTemplate.objects.count() == 10  # 0002's eight, and 0015's Card expiring and Card-update link


def test_sending_through_resend_without_a_key_fails_at_start(settings):
    settings.AUTOMATIONS_EMAIL_TRANSPORT = "resend"
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_API_KEY": ""}
    assert "automations.E002" in [message.id for message in run_checks()]


def test_money_and_dates_read_like_a_receipt():
    from automations.rendering import format_date, money

    assert money(1999, "usd") == "$19.99"
    assert money(2999, "eur") == "€29.99"
    # The yen has no minor unit: Stripe's 1500 is ¥1,500, not 15.00 (https://docs.stripe.com/currencies#zero-decimal).
    assert money(1500, "jpy") == "1,500 JPY"
    assert money(250000, "krw") == "250,000 KRW"
    assert money(None, "usd") == ""
    assert format_date("2026-12-04T10:00:00Z") == "December 4, 2026"
    assert format_date(1796378400) == "December 4, 2026"
