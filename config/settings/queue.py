"""The task queue (django-q2). Part of base.py."""

from .environment import env, env_int

# django-q2: the ORM broker by default (no extra service), Redis when Q_REDIS_URL is set. A task is given `timeout`
# seconds, handed to another worker after `retry` seconds (so retry must exceed timeout, or a slow task runs twice
# at once), and given up after `max_attempts` (django-q2's default, 0, retries forever).
Q_CLUSTER = {
    "name": "modready",
    "workers": env_int("Q_WORKERS", 2),
    "recycle": 500,
    "timeout": env_int("Q_TIMEOUT", 120),
    "retry": env_int("Q_RETRY", 180),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5),
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "queue_limit": 100,
    "label": "Task queue",
    "cache": "local",
}
if env("Q_REDIS_URL"):
    Q_CLUSTER["redis"] = env("Q_REDIS_URL")
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1
