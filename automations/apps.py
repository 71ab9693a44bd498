from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        # Domain-event subscribers and the anymail tracking-signal receiver register themselves on import.
        from . import checks, subscribers  # noqa: F401
