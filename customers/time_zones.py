"""A customer's time zone for quiet hours: their own (Customer.time_zone), else the zone of the country Stripe has for
them, else the site default (CUSTOMER_DEFAULT_TIME_ZONE). One zone per country: for a country that spans several
(the US, Canada, Brazil, Australia) the most populous one; a customer or staff can set the exact zone."""

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings

# The countries our customers pay from (Stripe's address.country, ISO 3166-1 alpha-2).
COUNTRY_TIME_ZONES = {
    "AT": "Europe/Vienna",
    "AU": "Australia/Sydney",
    "BE": "Europe/Brussels",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CH": "Europe/Zurich",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "IT": "Europe/Rome",
    "JP": "Asia/Tokyo",
    "LU": "Europe/Luxembourg",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "NZ": "Pacific/Auckland",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "SE": "Europe/Stockholm",
    "US": "America/New_York",
}


def zone_for_country(country: str) -> str:
    """The zone of a country we know, else ""."""
    return COUNTRY_TIME_ZONES.get((country or "").strip().upper(), "")


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_is_valid(name: str) -> bool:
    return name in _known_zones()


def zone_info(name: str) -> ZoneInfo:
    """The zone `name`, or the site default for a blank or unknown one."""
    for candidate in (name, settings.CUSTOMER_DEFAULT_TIME_ZONE):
        if candidate and zone_is_valid(candidate):
            try:
                return _zone(candidate)
            except ZoneInfoNotFoundError:  # listed but unreadable: try the next
                continue
    return _zone("UTC")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
