"""Admin pages facing a query string they cannot use (a NUL byte in a list filter, `?days=²`, a date past year
9999): a message and the unfiltered page, never a 500.

Every admin page goes through ModReadyAdminSite.admin_view, which wraps it here. Staff follow links with query
strings from emails, bookmarks and other people; a hostile or garbled one must not look like the site is broken.
"""

import logging
from functools import wraps

from django.contrib import messages
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import ValidationError
from django.db import DataError
from django.http import HttpResponseRedirect

logger = logging.getLogger(__name__)

UNUSABLE_FILTERS = "Some of the filters in the address could not be used, so this page shows everything."

# What a value from the query string can raise once it reaches Python's dates or the database: a malformed number or
# date (ValueError, ValidationError), a date past year 9999 (OverflowError), a NUL byte or an out-of-range number that
# PostgreSQL refuses (ValueError from psycopg, DataError).
QUERY_VALUE_ERRORS = (ValueError, OverflowError, ValidationError, DataError)


def _has_control_characters(request) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


def _unfiltered(request) -> HttpResponseRedirect:
    messages.warning(request, UNUSABLE_FILTERS)
    return HttpResponseRedirect(request.path)


def query_string_guarded(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if request.method != "GET" or not request.GET:
            return view(request, *args, **kwargs)
        if _has_control_characters(request):
            return _unfiltered(request)
        try:
            response = view(request, *args, **kwargs)
            # A TemplateResponse runs its queries when rendered: render here, where a failure can still be answered.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        except QUERY_VALUE_ERRORS:
            logger.warning("admin: unusable query string on %s", request.path, exc_info=True)
            return _unfiltered(request)
        if isinstance(response, HttpResponseRedirect) and response.url == f"{request.path}?{ERROR_FLAG}=1":
            # Django's changelist refused the filters (IncorrectLookupParameters) and shows everything: say so.
            messages.warning(request, UNUSABLE_FILTERS)
        return response

    return guarded
