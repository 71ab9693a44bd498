from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Marketing"

    def ready(self) -> None:
        # A drain with nothing due writes the next chunk of a queuing broadcast itself (automations.queue_feeders):
        # a queuing task killed with its cluster then costs a second, not django-q2's retry.
        from automations.queue_feeders import queue_feeder_register

        from .broadcast_tasks import broadcast_queue_feed

        queue_feeder_register(broadcast_queue_feed)
