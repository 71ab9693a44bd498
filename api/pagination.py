from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from .filters import query_parameters_check, query_parameters_known

INVALID_CURSOR = "Invalid cursor: use the next or previous link of an earlier page."


class IdCursorPagination(CursorPagination):
    """Cursor pages over the primary key: unique and indexed, so every page is one index range scan however deep,
    and rows inserted while a tool pages through are neither skipped nor repeated."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        # DRF falls back to the default on a bad value; a tool asking for page_size=abc has a bug worth a 400.
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        # isdigit() alone accepts "²" and other digits int() refuses (a 500 before): ASCII digits only.
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: f"A whole number from 1 to {self.max_page_size}."})
        return int(value)

    def paginate_queryset(self, queryset, request, view=None):
        if view is not None:
            query_parameters_check(request, query_parameters_known(view))
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """A cursor we did not make (garbled, or hand-made with a position the ordering column cannot hold) is a 400
        naming `cursor`, never a 500 from the database or DRF's 404 "Invalid cursor"."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: INVALID_CURSOR}, code="invalid") from None
        if cursor is not None and cursor.position is not None:
            ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
            field = self._model._meta.get_field(ordering.lstrip("-"))
            try:
                value = field.to_python(cursor.position)
                field.run_validators(value)
                if isinstance(value, datetime):
                    # Our cursors hold UTC times; PostgreSQL refuses some offsets ISO 8601 allows (+16:02).
                    if value.tzinfo is None:
                        raise DjangoValidationError("naive")
                    cursor = cursor._replace(position=value.astimezone(UTC).isoformat())
            except (DjangoValidationError, OverflowError, ValueError):
                raise ValidationError({self.cursor_query_param: INVALID_CURSOR}, code="invalid") from None
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters


class RecentFirstCursorPagination(IdCursorPagination):
    """Newest first by occurrence time, the id breaking ties (timeline, stage history)."""

    ordering = ("-occurred_at", "-id")
