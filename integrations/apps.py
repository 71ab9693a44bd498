from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from core.configuration import providers_register

        from . import providers, workflows  # noqa: F401  (workflows registers its webhook processor and subscribers)

        providers_register(*providers.PROVIDERS)
