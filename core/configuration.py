"""The one way to say what an outside system needs from the settings, and to check it.

Each provider declares its settings once, as a `ProviderSettings`, in the app that talks to it
(`integrations/providers.py`, `billing/providers.py`), and that app's `ready()` passes them to `providers_register`:

- at start, a provider that is enabled but misses a variable stops the process (web, qcluster, any command) with
  ImproperlyConfigured naming the variable, instead of failing on the first webhook hours later;
- `manage.py check` (and every command that runs the checks) lists the same as errors, one per provider;
- a client asks `provider_require(name)` before use (a disabled provider is a configuration error, not a silent
  skip), and a view that answers 503 while unconfigured asks `provider_is_configured(name)`.

A provider with no `enabled_by` is optional: nothing stops the start without it, and `provider_is_configured` says
whether it can be used.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    # Settings that must be non-empty; "ANYMAIL.RESEND_API_KEY" reads a key of a dict setting.
    required: tuple[str, ...]
    # What turns the provider on: a boolean setting ("MAUTIC_ENABLED"), or a setting and the value that selects it
    # (("AUTOMATIONS_EMAIL_TRANSPORT", "resend")); None: optional.
    enabled_by: str | tuple[str, str] | None = None
    # The system check's id (kept where tests and runbooks already name one).
    check_id: str = "core.E001"
    hint: str = "See .env.example."

    def enabled(self) -> bool:
        if self.enabled_by is None:
            return False
        if isinstance(self.enabled_by, tuple):
            setting, selected = self.enabled_by
            return getattr(settings, setting, None) == selected
        return bool(getattr(settings, self.enabled_by, False))

    def switch(self) -> str:
        """The enabled_by setting in words: "MAUTIC_ENABLED is on", "AUTOMATIONS_EMAIL_TRANSPORT is resend"."""
        if isinstance(self.enabled_by, tuple):
            return f"{self.enabled_by[0]} is {self.enabled_by[1]}"
        return f"{self.enabled_by} is on"

    def missing(self) -> list[str]:
        """The empty required variables, by their environment names ("ANYMAIL.RESEND_API_KEY" -> RESEND_API_KEY)."""
        return [name.rpartition(".")[2] for name in self.required if not setting_value(name)]

    def problem(self) -> str | None:
        """What stops the start: None unless the provider is enabled and misses a variable."""
        missing = self.missing()
        if not self.enabled() or not missing:
            return None
        first, rest = missing[0], missing[1:]
        also = f" (also empty: {', '.join(rest)})" if rest else ""
        return f"{self.switch()} but {first} is empty{also} (see .env.example)."


def setting_value(name: str):
    holder, _, key = name.partition(".")
    value = getattr(settings, holder, "")
    if key:
        value = (value or {}).get(key, "")
    return value


_PROVIDERS: dict[str, ProviderSettings] = {}


def providers_register(*providers: ProviderSettings) -> None:
    """Record the declarations (from the owning app's ready()) and stop the start if one is enabled but not
    configured."""
    for provider in providers:
        _PROVIDERS[provider.name] = provider
    configuration_check(providers)


def configuration_check(providers: tuple[ProviderSettings, ...] | None = None) -> None:
    """Raise ImproperlyConfigured naming every missing variable of the enabled providers (all registered ones by
    default)."""
    problems = [problem for provider in providers or _PROVIDERS.values() if (problem := provider.problem())]
    if problems:
        raise ImproperlyConfigured(" ".join(problems))


def provider_settings(name: str) -> ProviderSettings:
    return _PROVIDERS[name]


def provider_is_configured(name: str) -> bool:
    """Every required variable is set (for an optional provider), and an enabled-by switch, if any, is on."""
    provider = _PROVIDERS[name]
    if provider.enabled_by is not None and not provider.enabled():
        return False
    return not provider.missing()


def provider_require(name: str) -> None:
    """Called by a client before use: a disabled provider is a configuration error, not a silent skip."""
    provider = _PROVIDERS[name]
    if provider.enabled_by is not None and not provider.enabled():
        if isinstance(provider.enabled_by, tuple):
            setting, selected = provider.enabled_by
            raise ImproperlyConfigured(f"{setting} is not {selected}: {provider.name} is not in use.")
        raise ImproperlyConfigured(f"{provider.enabled_by} is off: this integration is disabled (see .env.example).")
    missing = provider.missing()
    if missing:
        raise ImproperlyConfigured(f"{provider.name} needs {', '.join(missing)} (see .env.example).")


@register(Tags.compatibility)
def providers_configured(app_configs, **kwargs) -> list[Error]:
    """The same as the start-up failure, for `manage.py check`: one error per enabled provider missing a variable."""
    return [
        Error(problem, hint=provider.hint, id=provider.check_id)
        for provider in _PROVIDERS.values()
        if (problem := provider.problem())
    ]
