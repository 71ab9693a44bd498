"""Errors raised outside DRF's views still answer /api/ callers in the one error format (drf-standardized-errors)."""

from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception=None):
    """A path no API route matches (an id that is not a number, a typo) is a JSON 404 under /api/, not an HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"type": "client_error", "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}]},
            status=404,
        )
    return page_not_found(request, exception)
