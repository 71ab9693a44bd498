"""The conditions a segment is made of: for each field, the operators it takes, how its value is written and checked,
and the SQL it compiles to (a Q over customers, so a segment is one query whatever the number of customers).

What lives in another table (subscriptions, moves, tracking events, tickets, payment failures) is `id IN (SELECT
customer_id ...)`, the owning app's selector over every customer, not a correlated EXISTS: PostgreSQL runs an IN as a
semi-join or one hashed subplan however the conditions are combined, where EXISTS under "any" (an OR) is probed once
per customer. Measured on 100,000 customers, "any" of six conditions: the page's three queries 0.8-1.0 s with IN,
4.6 s with EXISTS (docs/ARCHITECTURE.md, "Segments"). Each selector's ids are never null, so "none of" (NOT IN) means
what it says.

A value has one stored shape per operator, checked by `value_check` (no database; run at every evaluation, so a row
damaged outside the forms is an error message, not a 500):

- "is one of" / "is none of": a list of values (stage or status names, Stripe product or price ids, ISO country
  codes, template or rule ids);
- "yes" / "no": null;
- "at least / at most / in the last / not in the last N days": a whole number of days, 1 to 36,500;
- "between two dates": {"since": "2026-01-01", "until": "2026-03-31"}, UTC days, both included.

`condition_clean` also checks listed values against what the CRM knows (a product that exists, a template by that
id): run when a condition is saved, not when it is evaluated (a template deleted later matches nobody).
`value_parse` reads the text staff type in the admin ("active, at risk"; "30"; "2026-01-01 to 2026-03-31").
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from automations import customer_engagement
from automations.models import EmailEventType
from billing import selectors as billing_selectors
from billing.models import CURRENT_STATUSES, SubscriptionStatus
from customers.lifecycle import Stage
from customers.selectors import stage_entered_moves
from support.selectors import customers_with_open_tickets

from .models import ConditionField, Match, Operator

LIST_OPERATORS = (Operator.ONE_OF, Operator.NONE_OF)
FLAG_OPERATORS = (Operator.YES, Operator.NO)
DAYS_OPERATORS = (Operator.AT_LEAST_DAYS, Operator.AT_MOST_DAYS, Operator.WITHIN_DAYS, Operator.NOT_WITHIN_DAYS)
RECENT = (Operator.WITHIN_DAYS, Operator.NOT_WITHIN_DAYS)
PERIOD = (*RECENT, Operator.BETWEEN)
NEGATIVE = (Operator.NONE_OF, Operator.NO, Operator.NOT_WITHIN_DAYS)
MAX_DAYS = 36_500
MAX_VALUES = 200
MAX_ID = 2**63 - 1  # PostgreSQL's bigint
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)  # far from the ends datetime arithmetic overflows at
COUNTRY = re.compile(r"^[A-Z]{2}$")
OPERATOR_LABELS = dict(Operator.choices)
FIELD_LABELS = dict(ConditionField.choices)


def _customers_in(ids: QuerySet) -> Q:
    """Customers whose id is among `ids` (a one-column queryset of customer ids, none null)."""
    return Q(pk__in=ids)


@dataclass(frozen=True)
class Field:
    operators: tuple[str, ...]
    # The positive SQL (the operator's negative is its NOT): (operator, value, moment) -> Q over customers.
    positive: Callable[[str, Any, datetime], Q]
    # For list fields: the values staff may pick, as (value, label); None: any value `pattern` accepts.
    choices: Callable[[], list[tuple[Any, str]]] | None = None
    pattern: re.Pattern | None = None
    integer_values: bool = False
    values_word: str = "values"


def _since(value: int, at: datetime) -> datetime:
    return at - timedelta(days=value)


def _period(operator: str, value: Any, at: datetime) -> tuple[datetime, datetime | None]:
    if operator == Operator.BETWEEN:
        since = datetime.combine(date.fromisoformat(value["since"]), time.min, tzinfo=UTC)
        until = datetime.combine(date.fromisoformat(value["until"]), time.min, tzinfo=UTC) + timedelta(days=1)
        return since, until
    return _since(value, at), None


def _created(operator: str, value: Any, at: datetime) -> Q:
    since, until = _period(operator, value, at)
    return Q(created_at__gte=since) & (Q(created_at__lt=until) if until else Q())


def _churned(operator: str, value: Any, at: datetime) -> Q:
    # As the dashboard counts churn: a win-back that ends without a return is not a new churn.
    since, until = _period(operator, value, at)
    moves = stage_entered_moves(stage=Stage.CHURNED, since=since, until=until, not_from_stage=Stage.WIN_BACK)
    return _customers_in(moves.values("customer_id"))


def _tenure(operator: str, value: int, at: datetime) -> Q:
    if operator == Operator.AT_LEAST_DAYS:
        return Q(created_at__lte=_since(value, at))
    return Q(created_at__gt=_since(value, at))


def _subscriptions(**filters) -> Q:
    return _customers_in(billing_selectors.subscription_exists_filter(customer=None, **filters).values("customer_id"))


def _sent(**filters) -> Q:
    return _customers_in(customer_engagement.emails_sent_filter(**filters).values("customer_id"))


def _email_event(event_type: str) -> Callable[[str, Any, datetime], Q]:
    def positive(operator: str, value: int, at: datetime) -> Q:
        events = customer_engagement.email_events_filter(event_type=event_type, since=_since(value, at))
        return _customers_in(events.values("queue_item__customer_id"))

    return positive


FIELDS: dict[str, Field] = {
    ConditionField.LIFECYCLE_STAGE: Field(
        LIST_OPERATORS, lambda op, value, at: Q(lifecycle_stage__in=value), choices=lambda: Stage.choices
    ),
    ConditionField.PRODUCT: Field(
        LIST_OPERATORS,
        lambda op, value, at: _subscriptions(product_ids=value, statuses=CURRENT_STATUSES),
        choices=billing_selectors.products_known,
        values_word="products",
    ),
    ConditionField.PLAN: Field(
        LIST_OPERATORS,
        lambda op, value, at: _subscriptions(price_ids=value, statuses=CURRENT_STATUSES),
        choices=billing_selectors.plans_known,
        values_word="plans",
    ),
    ConditionField.SUBSCRIPTION_STATUS: Field(
        LIST_OPERATORS, lambda op, value, at: _subscriptions(statuses=value), choices=lambda: SubscriptionStatus.choices
    ),
    ConditionField.VIP: Field(FLAG_OPERATORS, lambda op, value, at: Q(vip_status=True)),
    ConditionField.MARKETING_CONSENT: Field(FLAG_OPERATORS, lambda op, value, at: Q(opt_in_confirmed=True)),
    ConditionField.TENURE: Field((Operator.AT_LEAST_DAYS, Operator.AT_MOST_DAYS), _tenure),
    ConditionField.COUNTRY: Field(
        LIST_OPERATORS,
        lambda op, value, at: Q(
            stripe_customer_id__in=billing_selectors.stripe_customers_in_countries(countries=value).values("id")
        ),
        pattern=COUNTRY,
        values_word="two-letter country codes (ISO 3166, e.g. DE, FR)",
    ),
    ConditionField.CREATED: Field(PERIOD, _created),
    ConditionField.CHURNED: Field(PERIOD, _churned),
    ConditionField.OPENED_EMAIL: Field(RECENT, _email_event(EmailEventType.OPENED)),
    ConditionField.CLICKED_EMAIL: Field(RECENT, _email_event(EmailEventType.CLICKED)),
    ConditionField.RECEIVED_TEMPLATE: Field(
        LIST_OPERATORS,
        lambda op, value, at: _sent(template_ids=value),
        choices=customer_engagement.template_choices,
        integer_values=True,
        values_word="email templates",
    ),
    ConditionField.RECEIVED_RULE: Field(
        LIST_OPERATORS,
        lambda op, value, at: _sent(rule_ids=value),
        choices=customer_engagement.rule_choices,
        integer_values=True,
        values_word="automation rules",
    ),
    ConditionField.OPEN_TICKET: Field(
        FLAG_OPERATORS, lambda op, value, at: _customers_in(customers_with_open_tickets())
    ),
    ConditionField.FAILED_PAYMENT: Field(
        RECENT,
        lambda op, value, at: _customers_in(
            billing_selectors.payment_failed_filter(since=_since(value, at)).values("customer_id")
        ),
    ),
}


# --- checking -----------------------------------------------------------------------------------------------------


def _field(field: str) -> Field:
    spec = FIELDS.get(field)
    if spec is None:
        raise ValidationError({"field": f"{field!r} is not a condition field (one of: {', '.join(FIELDS)})."})
    return spec


def operator_check(field: str, operator: str) -> Field:
    spec = _field(field)
    if operator not in spec.operators:
        allowed = ", ".join(f"“{OPERATOR_LABELS[name]}”" for name in spec.operators)
        raise ValidationError({"operator": f"“{FIELD_LABELS[field]}” takes {allowed}; not {operator!r}."})
    return spec


def value_check(field: str, operator: str, value: Any) -> Any:
    """The value in its stored shape for the field and operator, or a ValidationError saying what is wrong. No
    database: safe to run at every evaluation."""
    spec = operator_check(field, operator)
    if operator in FLAG_OPERATORS:
        if value not in (None, "", []):
            raise ValidationError({"value": "Yes / no takes no value: leave it empty."})
        return None
    if operator in DAYS_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
            raise ValidationError({"value": f"A whole number of days from 1 to {MAX_DAYS:,}."})
        return value
    if operator == Operator.BETWEEN:
        return _period_check(value)
    return _list_check(spec, value)


def _period_check(value: Any) -> dict[str, str]:
    message = 'Two dates, the first not after the second: {"since": "2026-01-01", "until": "2026-03-31"}.'
    if not isinstance(value, dict) or set(value) != {"since", "until"}:
        raise ValidationError({"value": message})
    try:
        since, until = date.fromisoformat(str(value["since"])), date.fromisoformat(str(value["until"]))
    except ValueError:
        raise ValidationError({"value": message}) from None
    if since > until or since < EARLIEST or until > LATEST:
        raise ValidationError({"value": f"{message} Dates from {EARLIEST} to {LATEST}."})
    return {"since": since.isoformat(), "until": until.isoformat()}


def _list_check(spec: Field, value: Any) -> list:
    kind = int if spec.integer_values else str
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_VALUES
        or not all(isinstance(item, kind) and not isinstance(item, bool) for item in value)
        or (spec.integer_values and not all(1 <= item <= MAX_ID for item in value))
    ):
        what = "ids (whole numbers)" if spec.integer_values else "texts"
        raise ValidationError({"value": f"A list of 1 to {MAX_VALUES} {spec.values_word}, as {what}."})
    if spec.pattern is not None:
        wrong = [item for item in value if not spec.pattern.match(item)]
        if wrong:
            raise ValidationError({"value": f"Not {spec.values_word}: {', '.join(map(str, wrong))}."})
    return list(dict.fromkeys(value))  # in the order given, once each


def condition_clean(*, field: str, operator: str, value: Any) -> Any:
    """`value_check`, and every listed value one the CRM knows (one query for the fields that list records)."""
    value = value_check(field, operator, value)
    spec = FIELDS[field]
    if operator in LIST_OPERATORS and spec.choices is not None:
        known = {choice for choice, _label in spec.choices()}
        unknown = [item for item in value if item not in known]
        if unknown:
            raise ValidationError({"value": f"Not known {spec.values_word}: {', '.join(map(str, unknown))}."})
    return value


# --- reading what staff type, and saying it back ------------------------------------------------------------------


def value_parse(*, field: str, operator: str, text: str) -> Any:
    """The stored value for what staff typed, checked (condition_clean). List values may be written as values or
    labels (“at risk”, a template's name), separated by commas."""
    spec = operator_check(field, operator)
    text = (text or "").strip()
    if operator in FLAG_OPERATORS:
        value: Any = text or None
    elif operator in DAYS_OPERATORS:
        value = int(text) if text.isascii() and text.isdigit() else text
    elif operator == Operator.BETWEEN:
        parts = re.split(r"\s+(?:to|until|-|\u2013)\s+|\s*\.\.\s*", text)
        value = {"since": parts[0], "until": parts[1]} if len(parts) == 2 else text
    else:
        value = _list_parse(spec, text)
    return condition_clean(field=field, operator=operator, value=value)


def _list_parse(spec: Field, text: str) -> list:
    tokens = [token.strip() for token in re.split(r"[,\n]", text) if token.strip()]
    if spec.choices is None:
        return [token.upper() for token in tokens]
    by_text = {}
    for choice, label in spec.choices():
        by_text[str(choice).lower()] = choice
        by_text.setdefault(str(label).lower(), choice)
    unknown = [token for token in tokens if token.lower() not in by_text]
    if unknown:
        offered = ", ".join(str(label) for _choice, label in spec.choices()[:30]) or "none yet"
        raise ValidationError({"value": f"Not known {spec.values_word}: {', '.join(unknown)} (known: {offered})."})
    return [by_text[token.lower()] for token in tokens]


def value_text(*, field: str, operator: str, value: Any, labels: dict | None = None) -> str:
    """The value as staff write it (the admin form's text, the segment's sentence)."""
    if operator in FLAG_OPERATORS or value is None:
        return ""
    if operator in DAYS_OPERATORS:
        return str(value)
    if operator == Operator.BETWEEN and isinstance(value, dict):
        return f"{value.get('since')} to {value.get('until')}"
    if isinstance(value, list):
        labels = labels if labels is not None else condition_labels(field)
        return ", ".join(str(labels.get(item, item)) for item in value)
    return str(value)


def condition_labels(field: str) -> dict:
    """The names to show for a field's stored ids (templates, rules); empty for fields that store what they show."""
    spec = FIELDS.get(field)
    return dict(spec.choices()) if spec and spec.choices and spec.integer_values else {}


def condition_text(*, field: str, operator: str, value: Any, labels: dict | None = None) -> str:
    """One condition in words: “Lifecycle stage is one of active, at_risk”, “Opened any email in the last 30 days”."""
    label, words = FIELD_LABELS.get(field, field), OPERATOR_LABELS.get(operator, operator)
    shown = value_text(field=field, operator=operator, value=value, labels=labels)
    if operator in FLAG_OPERATORS:
        return f"{label}: {words}"
    if operator in DAYS_OPERATORS:
        return f"{label} {words.replace('N', shown)}"
    if operator == Operator.BETWEEN:
        return f"{label} between {shown.replace(' to ', ' and ')} (UTC days, both included)"
    return f"{label} {words} {shown}"


# --- compiling ----------------------------------------------------------------------------------------------------


def condition_q(*, field: str, operator: str, value: Any, at: datetime) -> Q:
    """The condition as a Q over customers, at the moment `at` (for "in the last N days"). Raises ValidationError
    when the stored field, operator or value is not one of ours."""
    value = value_check(field, operator, value)
    positive = FIELDS[field].positive(operator, value, at)
    return ~positive if operator in NEGATIVE else positive


def definition_q(*, match: str, conditions: list[tuple[str, str, Any]], at: datetime) -> Q:
    """All or any of the (field, operator, value) conditions as one Q; no condition: every customer."""
    if match not in Match.values:
        raise ValidationError({"match": f"{match!r} is not one of: {', '.join(Match.values)}."})
    combined = Q()
    for field, operator, value in conditions:
        condition = condition_q(field=field, operator=operator, value=value, at=at)
        combined = (combined & condition) if match == Match.ALL or not combined else (combined | condition)
    return combined
