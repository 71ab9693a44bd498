"""Filters shared by every resource."""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.settings import api_settings


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """`true` or `false`, anything else is a 400 (django-filter's BooleanFilter silently ignores a bad value, so a
    typo would return the unfiltered list)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "pattern": "^[^\\x00]*$"})
class TextFilter(django_filters.CharFilter):
    """Text, exact. Django's form field refuses a NUL character with 400 (PostgreSQL text cannot hold one): the
    schema says so, so a schema-valid value is never refused (schemathesis found the undocumented 400)."""


@extend_schema_field({"type": "string", "minLength": 1, "pattern": "^[^\\x00]*$"})
class RequiredTextFilter(TextFilter):
    """Text that must not be empty: `?email=` is a 400, not "every customer"."""

    value_required = True


ID_MAX = 2**63 - 1  # PostgreSQL's bigint: ids are never larger


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": ID_MAX})
class IdFilter(django_filters.NumberFilter):
    """A row's id: a whole number the schema bounds as the form does, so a tool (or a fuzzer) that keeps to the
    schema is never refused. django-filter's NumberFilter caps at 1e50 and the schema would say only "number"."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


class StrictFilterSet(django_filters.FilterSet):
    """An empty value (`?created_since=`) is a 400, not "no filter" (django-filter's default): the schema says what
    each parameter takes, and a tool that sends nothing where it meant a date has a bug. Text filters may be empty."""

    def is_valid(self):
        valid = super().is_valid()
        for name, filter_ in self.filters.items():
            text = isinstance(filter_.field, forms.CharField) and not getattr(filter_, "value_required", False)
            if text or name not in self.data:
                continue
            values = self.data.getlist(name) if hasattr(self.data, "getlist") else [self.data[name]]
            if any(value == "" for value in values):
                # The code the field itself gives a bad value, so the documented error codes stay true.
                code = "invalid_choice" if isinstance(filter_.field, forms.ChoiceField) else "invalid"
                self.form.add_error(name, forms.ValidationError("A value is required.", code=code))
                valid = False
        return valid


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        # ISO 8601 allows offsets PostgreSQL refuses (+16:02, found by schemathesis as a 500): compare in UTC.
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Date and time out of range.", code="invalid") from None


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IndexedSearchFilter(filters.SearchFilter):
    """DRF's search, with `=` meaning an exact, case-sensitive match (DRF's is `iexact`, which wraps the column in
    UPPER() and so cannot use its plain index). External ids (Stripe, Discord, Mautic, EspoCRM) are exact strings, so
    nothing is lost, and each `=` field is one index lookup. Contains-matches (`icontains`, UPPER(col) LIKE '%term%')
    are served on PostgreSQL by the trigram indexes of customers/migrations/0005."""

    lookup_prefixes = {**filters.SearchFilter.lookup_prefixes, "=": "exact"}


class ChoicesFilter(django_filters.MultipleChoiceFilter):
    """Any of several values of one column (`?status=a&status=b` is `status IN (a, b)`), without django-filter's
    default DISTINCT: that is there for lookups across to-many joins, and on a plain column it only makes PostgreSQL
    de-duplicate every matching row (jsonb included) before the page's LIMIT (26 ms instead of 2 for a filtered page
    of 100,000 customers)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


def query_parameters_known(view) -> set[str]:
    """The query parameters a list view reads: its filters, search, ordering and pagination (what its schema lists)."""
    known = {"format"}  # DRF's format override (`?format=json`), read by content negotiation
    for backend_class in getattr(view, "filter_backends", None) or []:
        backend = backend_class()
        if isinstance(backend, django_filters.rest_framework.DjangoFilterBackend):
            filterset_class = getattr(view, "filterset_class", None)
            if filterset_class is not None:
                known.update(filterset_class.base_filters)
        elif isinstance(backend, filters.SearchFilter):
            known.add(backend.search_param)
        elif isinstance(backend, filters.OrderingFilter):
            known.add(backend.ordering_param)
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        known.update(
            name for name in (getattr(paginator, "cursor_query_param", None), paginator.page_size_query_param) if name
        )
    return known


def query_parameters_check(request, known) -> None:
    """A query parameter the endpoint does not read is a 400, never silently ignored: `?email=` on a list that had
    no such filter returned every customer, a different one first."""
    unknown = sorted(name for name in request.query_params if name not in known)
    if unknown:
        detail = f"Unknown query parameter: {', '.join(unknown)}. This endpoint reads: {', '.join(sorted(known))}."
        raise ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail(detail, code="unknown_parameter")]})


class KnownQueryParametersBackend(filters.BaseFilterBackend):
    """For a list without pagination (the paginated ones check in api.pagination): refuse unknown parameters."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", "list") == "list":
            query_parameters_check(request, query_parameters_known(view))
        return queryset
