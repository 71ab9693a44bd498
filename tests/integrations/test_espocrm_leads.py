"""EspoCRM leads: each contact linked to the lead with their own email, never to a namesake's.

EspoCRM's duplicate check matches the same first and last name or the same email (the fake does the same), so a
409 can name another person. The workflow takes a suspected lead only when its email is ours, and the repair command
fixes the links stored before that.
"""

import io

import pytest
from django.core.management import call_command

from customers.models import Customer
from integrations.models import RunStatus, WorkflowRun
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def lead_of(fakes, email: str) -> dict:
    lead_id = Customer.objects.get(email__iexact=email).espocrm_lead_id
    return fakes.espocrm.leads[lead_id]


def test_two_people_with_the_same_name_each_get_their_own_lead(fakes, deliver_mautic):
    first = fakes.mautic.add_contact(email="sam@a.example", firstname="Sam", lastname="Smith", opt_in_confirmed=True)
    second = fakes.mautic.add_contact(email="sam@b.example", firstname="Sam", lastname="Smith", opt_in_confirmed=True)

    deliver_mautic(fakes.mautic.webhook_body([first]))
    deliver_mautic(fakes.mautic.webhook_body([second]))

    assert lead_of(fakes, "sam@a.example")["emailAddress"] == "sam@a.example"
    assert lead_of(fakes, "sam@b.example")["emailAddress"] == "sam@b.example"
    assert len(fakes.espocrm.leads) == 2
    assert set(WorkflowRun.objects.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
    # The second create met EspoCRM's 409 for the namesake, then was made without the check.
    creates = fakes.espocrm.requests_to("POST", "/api/v1/Lead")
    assert [r.header("x-skip-duplicate-check") for r in creates] == ["", "", "true"]


def test_contacts_without_a_name_get_no_last_name_made_up_from_their_email(fakes, deliver_mautic):
    first = fakes.mautic.add_contact(email="sam@a.example", opt_in_confirmed=True)
    second = fakes.mautic.add_contact(email="Sam@b.example", opt_in_confirmed=True)

    deliver_mautic(fakes.mautic.webhook_body([first]))
    deliver_mautic(fakes.mautic.webhook_body([second]))

    assert lead_of(fakes, "sam@a.example")["emailAddress"] == "sam@a.example"
    assert lead_of(fakes, "sam@b.example")["emailAddress"].lower() == "sam@b.example"
    assert len(fakes.espocrm.leads) == 2
    assert {lead["lastName"] for lead in fakes.espocrm.leads.values()} == {""}


def test_a_409_for_our_own_address_in_another_case_takes_that_lead(fakes, deliver_mautic):
    existing = fakes.espocrm.add_lead(email="ADA@example.com", firstName="Ada", lastName="King")
    fakes.espocrm.add_lead(email="other@example.com", firstName="Ada", lastName="Lovelace")
    fakes.espocrm.search_misses = True  # the search index lags: the create meets the 409 (ids and names only)
    contact = fakes.mautic.add_contact(
        email="ada@example.com", firstname="Ada", lastname="Lovelace", opt_in_confirmed=True
    )

    deliver_mautic(fakes.mautic.webhook_body([contact]))

    assert Customer.objects.get(email="ada@example.com").espocrm_lead_id == existing
    assert len(fakes.espocrm.leads) == 2


def test_the_repair_command_relinks_wrong_leads_and_a_second_run_changes_nothing(fakes):
    namesake = fakes.espocrm.add_lead(email="sam@a.example", firstName="Sam", lastName="Smith")
    own = fakes.espocrm.add_lead(email="bea@example.com", firstName="Bea", lastName="Smith")
    right = CustomerFactory(email="sam@a.example", name="Sam Smith", espocrm_lead_id=namesake)
    wrong = CustomerFactory(email="sam@b.example", name="Sam Smith", espocrm_lead_id=namesake)  # never got their own
    found = CustomerFactory(email="Bea@Example.com", name="Bea Smith", espocrm_lead_id=namesake)  # has one already
    gone = CustomerFactory(email="gone@example.com", name="Gus", espocrm_lead_id="deleted0000000001")
    untouched = CustomerFactory(email="nolead@example.com", espocrm_lead_id="")

    out = io.StringIO()
    call_command("repair_espocrm_lead_links", stdout=out)

    for customer in (right, wrong, found, gone, untouched):
        customer.refresh_from_db()
    assert right.espocrm_lead_id == namesake
    assert found.espocrm_lead_id == own
    assert fakes.espocrm.leads[wrong.espocrm_lead_id]["emailAddress"] == "sam@b.example"
    assert (
        fakes.espocrm.leads[wrong.espocrm_lead_id]["firstName"],
        fakes.espocrm.leads[wrong.espocrm_lead_id]["lastName"],
    ) == ("Sam", "Smith")
    assert fakes.espocrm.leads[gone.espocrm_lead_id]["emailAddress"] == "gone@example.com"
    assert untouched.espocrm_lead_id == ""
    assert fakes.espocrm.leads[namesake]["emailAddress"] == "sam@a.example"  # the other person's lead is unchanged
    assert len(fakes.espocrm.leads) == 4
    report = out.getvalue()
    assert "4 lead links checked: 1 right, 3 relinked" in report
    assert f"customer {wrong.pk} <sam@b.example>: lead {namesake} (the lead belongs to another address)" in report

    again = io.StringIO()
    call_command("repair_espocrm_lead_links", stdout=again)
    assert "4 lead links checked: 4 right, 0 relinked" in again.getvalue()
    assert len(fakes.espocrm.leads) == 4


def test_the_repair_dry_run_changes_nothing(fakes):
    namesake = fakes.espocrm.add_lead(email="sam@a.example", firstName="Sam", lastName="Smith")
    wrong = CustomerFactory(email="sam@b.example", name="Sam Smith", espocrm_lead_id=namesake)

    out = io.StringIO()
    call_command("repair_espocrm_lead_links", "--dry-run", stdout=out)

    wrong.refresh_from_db()
    assert wrong.espocrm_lead_id == namesake and len(fakes.espocrm.leads) == 1
    assert "1 would be relinked" in out.getvalue()
