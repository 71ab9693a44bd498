"""How the schema describes our authentication (drf-spectacular finds this extension by the class path) and our
pagination errors."""

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


# Decorates each paginated view, so its documented 400 lists the page_size error too (api.pagination raises it).
documents_page_size_errors = extend_validation_errors(["invalid"], field_name="page_size")
