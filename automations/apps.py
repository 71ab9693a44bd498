from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        # Domain-event and email-tracking subscribers register themselves on import; checks register the email checks.
        # Billing credits a payment recovery to dunning when one of our dunning emails went out between the failure
        # and the payment (billing/recoveries.py): we tell it which were sent; billing does not import automations.
        from billing.recoveries import dunning_sends_source

        from . import checks, subscribers  # noqa: F401
        from .selectors import dunning_sends

        dunning_sends_source(dunning_sends)
