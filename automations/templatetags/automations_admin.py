from django import template

register = template.Library()


@register.filter
def rate(stats, name: str) -> str:
    """A stats rate as a percentage, or a dash when there is nothing to divide by."""
    value = stats.rate(name)
    return "-" if value is None else f"{value:.1%}"


@register.filter
def timing(step) -> str:
    """When a step goes out, in words: "3 days 4 hours after enrollment"."""
    from automations.forms import describe_timing

    return describe_timing(delay=step.delay, anchor=step.anchor)


@register.filter
def get_item(mapping, key):
    """`mapping[key]` in a template (a step's unsent counts by step id); None when absent."""
    return mapping.get(key) if mapping else None
