"""Discord's REST API for the support bot (HTTP interactions, no gateway). See client.py."""

from .client import DiscordClient, DiscordError
from .rate_limit import RateLimiter

__all__ = ["DiscordClient", "DiscordError", "RateLimiter"]
