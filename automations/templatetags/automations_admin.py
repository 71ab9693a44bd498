from django import template

register = template.Library()


@register.filter
def rate(stats, name: str) -> str:
    """A stats rate as a percentage, or a dash when there is nothing to divide by."""
    value = stats.rate(name)
    return "-" if value is None else f"{value:.1%}"
