from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from . import config, workflows  # noqa: F401  (workflows registers its webhook processor and subscribers)

        config.configuration_check()
