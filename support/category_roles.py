"""Which Discord role is a ticket's staff: the category's own role when it names one (CategoryStaffRole), else
DISCORD_STAFF_ROLE_ID. That role is mentioned in the opening message and in SLA pings, and is the one the channel's
permission overwrites let in (support/workflows.py)."""

from django.conf import settings

from .sla_models import CategoryStaffRole


def staff_role_for(category: str) -> str:
    role = CategoryStaffRole.objects.filter(category=category).values_list("role_id", flat=True).first()
    return role or settings.DISCORD_STAFF_ROLE_ID


def role_names() -> dict[str, str]:
    """Role id -> name for rendering `<@&id>` (the global staff role is "Staff")."""
    names = {
        row.role_id: row.role_name or row.get_category_display() + " staff" for row in CategoryStaffRole.objects.all()
    }
    return {**names, settings.DISCORD_STAFF_ROLE_ID: "Staff"}


def holds_staff_role(roles: tuple[str, ...] | list[str], category: str = "") -> bool:
    """Staff for a ticket: the global staff role, or the role of the ticket's category."""
    wanted = {settings.DISCORD_STAFF_ROLE_ID, staff_role_for(category) if category else ""} - {""}
    return bool(wanted & {str(r) for r in roles})
