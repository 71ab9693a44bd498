"""Permissions follow Django's model permissions, so a group sees and does through the API what it may in the admin.

Reads need `view_<model>` (DRF's DjangoModelPermissions asks nothing for GET); writes need add/change/delete. An
action that is not a plain create/update (retry, enable, enroll) names the permission it needs, the same one the
admin checks for that action. Permissions are checked before anything is looked up, so a caller without them
learns nothing (403, never 404).
"""

from django.contrib import admin
from rest_framework.permissions import BasePermission, DjangoModelPermissions

from .models import ServiceAccountKey

VIEW = ["%(app_label)s.view_%(model_name)s"]


class ModelPermissions(DjangoModelPermissions):
    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": VIEW,
        "HEAD": VIEW,
        "OPTIONS": VIEW,
    }

    def _queryset(self, view):
        # The model is all that is needed; a view's get_queryset may query (a nested list checks its customer).
        if getattr(view, "queryset", None) is not None:
            return view.queryset
        return super()._queryset(view)

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required = getattr(view, "required_permissions", None)
        if required is not None:
            perms = required.get(request.method)
            if perms is None:
                # A method the view does not declare is refused, never silently allowed.
                return False
            return user.has_perms(perms)
        return super().has_permission(request, view)


class SchemaReader(BasePermission):
    """The OpenAPI schema and its docs page: a service account's API key, or someone who may use the admin (staff
    whose session satisfied the second factor). A staff member's password alone never reaches them."""

    def has_permission(self, request, view):
        if isinstance(request.auth, ServiceAccountKey):
            return True
        return admin.site.has_permission(request)
