from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The composition above every domain app: the customer 360, the staff actions, the composed customer API, the
    dashboard and its charts. It reads each app through its selectors and writes through its services; no domain
    app imports it."""

    name = "backoffice"
    verbose_name = "Back-office"

    def ready(self) -> None:
        # The 360's quick actions that act through other apps join the customers' registry of audited actions.
        from .staff_actions import staff_actions_register

        staff_actions_register()
