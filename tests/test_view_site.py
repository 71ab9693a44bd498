"""The admin's "View site" link leads to a page that exists (Django's default, "/", is a 404 here)."""

from tests.customers.factories import StaffUserFactory


def test_view_site_leads_to_the_api_docs_which_staff_can_open(client, db):
    client.force_login(StaffUserFactory(is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert '<a href="/api/docs/">View site</a>' in page
    assert client.get("/api/docs/").status_code == 200
