"""How the schema describes our authentication (drf-spectacular finds this extension by the class path) and our
pagination errors."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Value: "Api-Key <key>". Keys are created in the admin (API keys) and shown once.',
        }


class TwoFactorSessionScheme(OpenApiAuthenticationExtension):
    """The staff session (DRF's session scheme, two-factor enforced on top): the same cookie scheme in the schema."""

    target_class = "api.authentication.TwoFactorSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


# An unknown query parameter (api.filters.query_parameters_check) is a 400 naming no field (`non_field_errors`).
documents_unknown_parameter_errors = extend_validation_errors(["unknown_parameter"], field_name="non_field_errors")


def documents_page_size_errors(view):
    """Decorates each paginated view, so its documented 400 lists what api.pagination raises: a bad `page_size`, a
    cursor we did not make, an unknown query parameter."""
    view = extend_validation_errors(["invalid"], field_name="page_size")(view)
    view = extend_validation_errors(["invalid"], field_name="cursor")(view)
    return documents_unknown_parameter_errors(view)
