import itertools

import pytest

from customers import services
from customers.lifecycle import ALLOWED_TRANSITIONS, Stage, can_transition
from customers.models import DomainEvent, StageTransition
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ALL_MOVES = [(a, b) for a, b in itertools.product(Stage.values, Stage.values) if a != b]
ALLOWED = [(a, b) for a, b in ALL_MOVES if b in ALLOWED_TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in ALL_MOVES if b not in ALLOWED_TRANSITIONS[a]]


def test_the_journey_of_the_seed_is_allowed_end_to_end():
    journey = ["trial", "purchase", "onboarding", "active", "at_risk", "churned", "win_back", "purchase"]
    customer = CustomerFactory(lifecycle_stage="discovery")
    for stage in journey:
        services.customer_move_stage(customer=customer, to_stage=stage, cause=f"test: {stage}")
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "purchase"
    path = [t.to_stage for t in customer.stage_transitions.order_by("occurred_at", "id")]
    assert path == journey


@pytest.mark.parametrize(("from_stage", "to_stage"), ALLOWED)
def test_allowed_transition_moves_and_is_recorded(from_stage, to_stage):
    customer = CustomerFactory(lifecycle_stage=from_stage)

    transition = services.customer_move_stage(customer=customer, to_stage=to_stage, cause="stripe: evt_1")

    customer.refresh_from_db()
    assert customer.lifecycle_stage == to_stage
    assert (transition.from_stage, transition.to_stage, transition.cause) == (from_stage, to_stage, "stripe: evt_1")
    assert not transition.forced


@pytest.mark.parametrize(("from_stage", "to_stage"), REFUSED)
def test_refused_transition_changes_nothing(from_stage, to_stage):
    customer = CustomerFactory(lifecycle_stage=from_stage)

    with pytest.raises(services.InvalidStageTransition):
        services.customer_move_stage(customer=customer, to_stage=to_stage, cause="bad")

    customer.refresh_from_db()
    assert customer.lifecycle_stage == from_stage
    assert not StageTransition.objects.filter(customer=customer).exists()
    assert not can_transition(from_stage, to_stage)


def test_staff_can_force_a_refused_move_and_it_is_marked():
    customer = CustomerFactory(lifecycle_stage="discovery")
    transition = services.customer_move_stage(customer=customer, to_stage="active", cause="fixed by staff", force=True)
    assert transition.forced


def test_moving_to_the_current_stage_is_a_no_op():
    customer = CustomerFactory(lifecycle_stage="active")
    assert services.customer_move_stage(customer=customer, to_stage="active", cause="again") is None
    assert not StageTransition.objects.exists()


def test_same_source_event_moves_once():
    customer = CustomerFactory(lifecycle_stage="active")
    services.customer_move_stage(customer=customer, to_stage="at_risk", cause="payment failed", source_key="evt_9")
    services.customer_move_stage(customer=customer, to_stage="active", cause="recovered", source_key="evt_10")
    again = services.customer_move_stage(customer=customer, to_stage="at_risk", cause="replay", source_key="evt_9")
    assert again is None
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "active"


def test_try_move_skips_a_refused_move_without_raising():
    customer = CustomerFactory(lifecycle_stage="churned")
    assert services.customer_try_move_stage(customer=customer, to_stage="at_risk", cause="late failure") is None
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "churned"


def test_a_move_announces_a_domain_event():
    customer = CustomerFactory(lifecycle_stage="trial")
    services.customer_move_stage(customer=customer, to_stage="purchase", cause="checkout")
    event = DomainEvent.objects.get(name="customer.stage_changed")
    assert event.customer == customer
    assert event.payload == {"from": "trial", "to": "purchase", "cause": "checkout"}
