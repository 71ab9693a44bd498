"""Keeping the CRM Customer in step with Mautic, through customers' services only (the copy itself, newest state
only, is in mautic_state.py and customers/mautic_state.py)."""

# Mautic alias -> Customer field (the seed's field conventions).
MARKETING_FIELDS = {
    "opt_in_confirmed": "opt_in_confirmed",
    "vip_status": "vip_status",
    "promo_code": "promo_code",
    "discord_invite_link_vip": "discord_invite_link_vip",
    "discord_invite_link_basic": "discord_invite_link_basic",
}
