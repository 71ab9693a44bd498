"""The local outbox in a real browser: an email sent through the local backend is listed, and opens with its HTML
rendered in a sandboxed frame (no script of the email runs, and the admin's CSP reports nothing)."""

from django.core.mail import EmailMultiAlternatives


def test_an_email_sent_locally_shows_in_the_outbox_with_its_html(login, superuser, screenshot, settings):
    settings.EMAIL_BACKEND = "devtools.outbox.EmailBackend"
    email = EmailMultiAlternatives(
        subject="Your ModReady payment didn't go through",
        body="Hi Mia, your payment of EUR 14.99 failed.",
        from_email="ModReady <hello@modready.example>",
        to=["mia@example.com"],
    )
    email.attach_alternative(
        '<h1 style="color:#b00">Payment failed</h1><p>Hi Mia, your payment of <b>EUR 14.99</b> failed.</p>'
        '<script>document.body.innerHTML = "script ran"</script>',
        "text/html",
    )
    email.idempotency_key = "email-queue-item:42"
    email.send()

    page = login(superuser)
    page.click("text=Outbox (local)")
    page.click("text=Your ModReady payment didn't go through")

    frame = page.frame_locator("iframe.outbox-html")
    assert frame.locator("h1").inner_text() == "Payment failed"
    assert "EUR 14.99" in frame.locator("p").inner_text()
    assert page.locator("iframe.outbox-html").get_attribute("sandbox") == ""
    assert "script ran" not in frame.locator("body").inner_text()
    assert "email-queue-item:42" in page.content()
    # The only complaint is the browser refusing the email's script: the sandbox at work, no CSP violation.
    assert page.console_errors and all("sandboxed" in error for error in page.console_errors), page.console_errors
    screenshot(page, "outbox")
