"""The crowdfunding workflows. Importing this package registers them (runs, webhook processor, subscribers)."""

from . import contact_invite, vip_coupon  # noqa: F401
