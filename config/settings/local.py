"""Local run on one machine: embedded SQLite unless DATABASE_URL is set, emails captured in var/emails/.

DEBUG stays off unless the environment turns it on (bin/run does, for a developer's own machine).
"""

import secrets

from .base import *  # noqa: F403
from .base import VAR_DIR, env, env_bool, env_list

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")


def _local_secret_key() -> str:
    """A key kept in var/ so sessions survive restarts; production must set SECRET_KEY itself."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY") or _local_secret_key()

# A developer's receiver usually runs on this machine over plain http (production refuses both).
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", True)
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", True)
# bin/run loads demo customers and an admin login (customers/management/commands/seed_demo.py).
SEED_DEMO_ALLOWED = True
