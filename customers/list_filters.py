"""The customer list's filters by period, read from the query string so that a figure elsewhere (the dashboard's
funnel, new and churned customers: backoffice/dashboard.py) can link to exactly the customers behind it.

- "entered a stage": `entered=<stage>` with `entered_since` / `entered_until` ([since, until), either may be left out)
  and `entered_not_from=<stage>` (a move from that stage does not count). A customer who entered twice in the period
  is listed once: the list counts customers, not moves.
- "created": `created_since` / `created_until`, the customers the CRM first recorded in [since, until).

Times are ISO 8601 (`2026-10-22`, `2026-10-22T07:52:00+00:00`; a time without an offset is UTC). A value that does not
parse is not a 400 or a 500: the list shows without that filter and says what was wrong. Each filter adds at most one
condition to the list's own query (customers.selectors), so the list's query count does not grow with the data.
"""

import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from . import selectors
from .lifecycle import Stage

ENTERED = "entered"
ENTERED_NOT_FROM = "entered_not_from"
ENTERED_SINCE = "entered_since"
ENTERED_UNTIL = "entered_until"
CREATED_SINCE = "created_since"
CREATED_UNTIL = "created_until"

STAGE_LABELS = dict(Stage.choices)


def entered_stage_url(*, stage: str, since: datetime, until: datetime, not_from_stage: str = "") -> str:
    """The customer list of those who entered `stage` in [since, until), as the dashboard's funnel counts them."""
    params = {ENTERED: stage, ENTERED_SINCE: since.isoformat(), ENTERED_UNTIL: until.isoformat()}
    if not_from_stage:
        params[ENTERED_NOT_FROM] = not_from_stage
    return f"{reverse('admin:customers_customer_changelist')}?{urlencode(params)}"


def created_url(*, since: datetime, until: datetime) -> str:
    """The customer list of those created in [since, until): the dashboard's "new customers"."""
    params = {CREATED_SINCE: since.isoformat(), CREATED_UNTIL: until.isoformat()}
    return f"{reverse('admin:customers_customer_changelist')}?{urlencode(params)}"


class BadFilter(ValueError):
    """A filter parameter that does not parse; the message says which and why, for the staff member."""


def moment_parse(name: str, value: str) -> datetime:
    """A point in time from the query string, timezone-aware (UTC unless it says otherwise)."""
    text = value.strip()
    # A "+" typed into an address arrives as a space: "2026-10-22T07:52:00 00:00".
    if "T" in text:
        text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text)
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise BadFilter(f"{name}={value!r} is not a date or a time (write 2026-10-22 or 2026-10-22T07:52:00+00:00)")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def period_text(since: datetime | None, until: datetime | None) -> str:
    def shown(moment: datetime) -> str:
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"

    if since and until:
        return f"between {shown(since)} and {shown(until)} UTC"
    if since:
        return f"since {shown(since)} UTC"
    if until:
        return f"before {shown(until)} UTC"
    return "at any time"


class _PeriodFilter(admin.ListFilter):
    """Takes its parameters out of the query string, parses them (`parse`, raising BadFilter) and, when one is wrong,
    is left out of the list with an error message instead of failing the page."""

    since_parameter: str
    until_parameter: str

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]
        self.since = self.until = None
        self.problem = ""
        if self.used_parameters:
            try:
                self.since = self._moment(self.since_parameter)
                self.until = self._moment(self.until_parameter)
                if self.since and self.until and self.since >= self.until:
                    raise BadFilter(f"{self.since_parameter} must be before {self.until_parameter}")
                self.parse()
            except BadFilter as exc:
                self.problem = f"The “{self.title}” filter was not applied: {exc}."
                # The admin builds its filters again for facet counts: say it once.
                said = request.__dict__.setdefault("_customer_list_problems", set())
                if self.problem not in said:
                    said.add(self.problem)
                    messages.error(request, self.problem)

    def _moment(self, name: str) -> datetime | None:
        value = self.used_parameters.get(name, "")
        return moment_parse(name, value) if value.strip() else None

    @property
    def active(self) -> bool:
        return bool(self.used_parameters) and not self.problem

    def has_output(self) -> bool:
        return True  # also when unused: the admin applies only the filters it shows

    def parse(self) -> None:
        """Parse the filter's other parameters (the period is parsed already)."""

    def clause(self) -> str:
        """What the filter keeps, to follow "Customers who " in the list's heading."""
        raise NotImplementedError


class StageEnteredFilter(_PeriodFilter):
    title = "entered a stage"
    since_parameter = ENTERED_SINCE
    until_parameter = ENTERED_UNTIL

    def expected_parameters(self):
        return [ENTERED, ENTERED_NOT_FROM, ENTERED_SINCE, ENTERED_UNTIL]

    def parse(self) -> None:
        self.stage = self._stage(ENTERED)
        if not self.stage:
            raise BadFilter(f"say which stage with {ENTERED}= (one of {', '.join(STAGE_LABELS)})")
        self.not_from_stage = self._stage(ENTERED_NOT_FROM)

    def _stage(self, name: str) -> str:
        value = self.used_parameters.get(name, "").strip()
        if value and value not in STAGE_LABELS:
            raise BadFilter(f"{name}={value!r} is not a stage (one of {', '.join(STAGE_LABELS)})")
        return value

    def queryset(self, request, queryset):
        if not self.active:
            return queryset
        return selectors.customers_entered_stage(
            customers=queryset,
            stage=self.stage,
            since=self.since,
            until=self.until,
            not_from_stage=self.not_from_stage,
        )

    def choices(self, changelist):
        chosen = self.stage if self.active else None
        yield {
            "selected": chosen is None,
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "Any stage, any time",
        }
        for stage, label in STAGE_LABELS.items():
            yield {
                "selected": chosen == stage,
                # Another stage keeps the period; "not from" belonged to the stage it was given with.
                "query_string": changelist.get_query_string({ENTERED: stage}, remove=[ENTERED_NOT_FROM]),
                "display": label,
            }

    def clause(self) -> str:
        not_from = f" (not from {STAGE_LABELS[self.not_from_stage]})" if self.not_from_stage else ""
        return f"entered {STAGE_LABELS[self.stage]}{not_from} {period_text(self.since, self.until)}"


class CreatedFilter(_PeriodFilter):
    title = "created"
    since_parameter = CREATED_SINCE
    until_parameter = CREATED_UNTIL
    RECENT_DAYS = (7, 30, 90)

    def expected_parameters(self):
        return [CREATED_SINCE, CREATED_UNTIL]

    def queryset(self, request, queryset):
        if not self.active:
            return queryset
        return selectors.customers_created_between(customers=queryset, since=self.since, until=self.until)

    def choices(self, changelist):
        today = timezone.now().astimezone(UTC).date()
        recent = {(today - timedelta(days=days)).isoformat(): f"In the last {days} days" for days in self.RECENT_DAYS}
        current = self.used_parameters if self.active else {}
        yield {
            "selected": not current,
            "query_string": changelist.get_query_string(remove=self.expected_parameters()),
            "display": "Any time",
        }
        preset = list(current) == [CREATED_SINCE] and current[CREATED_SINCE] in recent
        if current and not preset:
            yield {
                "selected": True,
                "query_string": changelist.get_query_string(),
                "display": period_text(self.since, self.until).capitalize(),
            }
        for since, label in recent.items():
            yield {
                "selected": preset and current[CREATED_SINCE] == since,
                "query_string": changelist.get_query_string({CREATED_SINCE: since}, remove=[CREATED_UNTIL]),
                "display": label,
            }

    def clause(self) -> str:
        return f"were created {period_text(self.since, self.until)}"


def list_heading(filter_specs) -> str:
    """One sentence for the active period filters: "Customers who entered Churned between … and … UTC"."""
    active = [spec for spec in filter_specs if isinstance(spec, _PeriodFilter) and spec.active]
    if not active:
        return ""
    heading = "Customers who " + " and who ".join(spec.clause() for spec in active) + "."
    if any(isinstance(spec, StageEnteredFilter) for spec in active):
        heading += " Each is listed once, however often they entered."
    return heading
