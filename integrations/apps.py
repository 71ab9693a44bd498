from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from core.configuration import providers_register

        from . import providers, workflows  # noqa: F401  (workflows registers its webhook processor and subscribers)
        from .resend import checks, tracking  # noqa: F401  (Resend's webhook checks and tracking-signal receiver)

        providers_register(*providers.PROVIDERS)
