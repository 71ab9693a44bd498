from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Cursor pages over the primary key: unique and indexed, so every page is one index range scan however deep,
    and rows inserted while a tool pages through are neither skipped nor repeated."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RecentFirstCursorPagination(IdCursorPagination):
    """Newest first by occurrence time, the id breaking ties (timeline, stage history)."""

    ordering = ("-occurred_at", "-id")
