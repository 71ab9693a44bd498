"""Producers that put emails on the queue step by step in a task of their own (a broadcast queues its recipients in
chunks), made known to the drain without automations importing them: they sit above it and register at start, as
billing's dunning source does.

A drain sender that finds nothing due asks them before it waits or ends (`queue_feeders_run`). A producer then runs
its next step in the drain itself, or says that its own task is running one now (`busy`): the drain waits a step for
it instead of ending. So a producer whose task died with its cluster goes on within a second of the queue running
dry (drains are leased and replaced in seconds), not after django-q2's retry (Q_RETRY, 180 s); a producer that is
slower than the drains is helped by them.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class Feed:
    queued: int = 0  # emails queued by this call
    busy: bool = False  # a producer's own task is queuing now: more is coming


QueueFeeder = Callable[[], Feed]
_feeders: list[QueueFeeder] = []


def queue_feeder_register(feeder: QueueFeeder) -> QueueFeeder:
    """Register a producer's step (the app that owns it, at start). Registering it again adds nothing."""
    if feeder not in _feeders:
        _feeders.append(feeder)
    return feeder


def queue_feeders_run() -> Feed:
    """Ask each producer for its next step. One that fails is logged and skipped: the queue's own work goes on."""
    total = Feed()
    for feeder in _feeders:
        try:
            feed = feeder()
        except Exception:
            logger.exception("Queue feeder %s failed", getattr(feeder, "__qualname__", feeder))
            continue
        total.queued += feed.queued
        total.busy = total.busy or feed.busy
        if total.queued:
            break  # work is due: send it before asking for more
    return total
