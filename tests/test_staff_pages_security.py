"""API schema and docs for staff only, served from the application; a Content-Security-Policy with no third-party
script on the admin.

No browser runs here, so "pages work under the policy" is checked on what the policy would block: every script a
page loads must come from this origin, and no page may carry inline script (`<script>` without `src`, `on...=`
handlers, `javascript:` links), which `script-src 'self'` refuses.
"""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.automations.factories import AutomationStepFactory
from tests.customers.factories import CustomerFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


class Resources(HTMLParser):
    """Collects the URLs a page loads and any inline script it carries."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href"):
            if attributes.get(name):
                self.urls.append(attributes[name])
        for name, value in attrs:
            if name.startswith("on"):
                self.inline_scripts.append(f"{tag} {name}={value}")
            if name in {"href", "src", "action"} and (value or "").strip().lower().startswith("javascript:"):
                self.inline_scripts.append(f"{tag} {name}={value}")
        if tag == "script" and not attributes.get("src") and attributes.get("type") != "application/json":
            self._in_inline_script = True

    def handle_data(self, data):
        if self._in_inline_script and data.strip():
            self.inline_scripts.append(data.strip()[:80])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False


def resources(html: str) -> Resources:
    parser = Resources()
    parser.feed(html)
    return parser


def external(urls: list[str]) -> list[str]:
    return [url for url in urls if urlsplit(url).netloc or url.startswith("//")]


@pytest.fixture
def staff(db):
    return StaffUserFactory(is_superuser=True)


@pytest.mark.parametrize("name", ["api-schema", "api-docs"])
def test_anonymous_visitors_get_no_schema_or_docs(client, name):
    response = client.get(reverse(name))
    assert response.status_code in {302, 401, 403}
    assert b"openapi" not in response.content.lower()


@pytest.mark.parametrize("name", ["api-schema", "api-docs"])
def test_non_staff_users_get_no_schema_or_docs(client, name):
    client.force_login(StaffUserFactory(is_staff=False))
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", ["api-schema", "api-docs"])
def test_staff_whose_session_lacks_their_second_factor_get_no_schema_or_docs(client, staff, name):
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    client.force_login(staff)
    assert client.get(reverse(name)).status_code == 403


def test_staff_get_the_schema(client, staff):
    client.force_login(staff)
    response = client.get(reverse("api-schema"))
    assert response.status_code == 200
    assert b"openapi:" in response.content


def test_the_docs_load_everything_from_this_application(client, staff):
    client.force_login(staff)
    response = client.get(reverse("api-docs"))
    page = resources(response.content.decode())

    assert response.status_code == 200
    assert external(page.urls) == []
    assert page.inline_scripts == []
    scripts = [url for url in page.urls if url.endswith(".js") or "script" in url]
    assert any("swagger-ui-bundle.js" in url for url in scripts)
    for url in page.urls:
        assert client.get(url).status_code == 200, url  # the sidecar's files and the start-up script are served


def test_the_docs_start_up_script_names_no_outside_host(client, staff):
    client.force_login(staff)
    docs = resources(client.get(reverse("api-docs")).content.decode())
    start_up = next(url for url in docs.urls if "script" in url and "swagger-ui" not in url)
    script = client.get(start_up).content.decode()

    assert "SwaggerUIBundle(" in script
    assert '"validatorUrl": null' in script  # Swagger UI would otherwise ask validator.swagger.io
    assert not re.search(r"https?://", script)


@pytest.fixture
def admin_pages(client, staff):
    customer = CustomerFactory()
    step = AutomationStepFactory()
    rule, template = step.rule, step.template
    client.force_login(staff)
    return [
        reverse("admin:index"),
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_change", args=[customer.pk]),
        reverse("admin:customers_customer_add"),
        reverse("admin:customers_customer_funnel"),
        reverse("admin:auth_user_changelist"),
        reverse("admin:otp_setup"),
        reverse("admin:automations_automationrule_changelist"),
        reverse("admin:automations_automationrule_change", args=[rule.pk]),  # inline steps: the admin's inline JS
        reverse("admin:automations_automationrule_add"),
        reverse("admin:automations_emailtemplate_change", args=[template.pk]),
        reverse("admin:automations_emailtemplate_preview", args=[template.pk]),
        reverse("admin:automations_analytics"),
        reverse("admin:automations_emailqueueitem_changelist"),
    ]


def test_every_answer_carries_a_policy_without_third_party_script(client):
    response = client.get(reverse("admin:login"))
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))

    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert resources(response.content.decode()).inline_scripts == []


def test_admin_pages_load_only_same_origin_scripts_and_carry_no_inline_script(client, admin_pages):
    for url in admin_pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        page = resources(response.content.decode())
        assert page.inline_scripts == [], url
        assert [src for src in external(page.urls) if src.endswith(".js")] == [], url
