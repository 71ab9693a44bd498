"""The rule page's two ways to stop a rule, and its state in the rule list (automations/rule_pause.py).

"Stop new enrollments" / "Allow new enrollments" and "Pause" / "Resume" are POSTs to
/admin/automations/automationrule/<id>/state/<action>/, allowed to staff who may change rules (Marketing).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from ..email_state import unsent_per_step
from ..forms import format_delay
from ..models import AutomationRule
from ..rule_pause import RuleState, rule_enrollments_set, rule_pause, rule_resume, rule_state


def _stop(request, rule):
    changed = rule_enrollments_set(rule_id=rule.pk, enabled=False)
    return "No new customers will start this sequence; those already in it still get its emails." if changed else None


def _allow(request, rule):
    changed = rule_enrollments_set(rule_id=rule.pk, enabled=True)
    return "New customers start this sequence again when its trigger happens." if changed else None


def _pause(request, rule):
    held = rule_pause(rule_id=rule.pk, by=request.user.get_username())
    if held is None:
        return None
    return f"Paused: {held} waiting email(s) held. No email of this rule goes out until it is resumed."


def _resume(request, rule):
    outcome = rule_resume(rule_id=rule.pk, by=request.user.get_username())
    if outcome is None:
        return None
    return (
        f"Resumed: {outcome.released} held email(s) released in step order; {outcome.skipped} skipped (more than "
        f"{format_delay(rule.resume_skip_after)} late, or their sequence ended), each with its reason."
    )


ACTIONS = {"stop": _stop, "allow": _allow, "pause": _pause, "resume": _resume}


def rule_state_view(model_admin, request, object_id: str, action: str):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action not in ACTIONS:
        raise Http404("No such action")
    rule = model_admin.get_object(request, object_id)
    if rule is None:
        raise Http404("No such rule")
    if not model_admin.has_change_permission(request, rule):
        raise PermissionDenied
    done = ACTIONS[action](request, rule)
    if done:
        messages.success(request, done)
    else:
        messages.info(request, f"Nothing to do: the rule is already {rule_state(rule).lower()}.")
    return redirect(reverse("admin:automations_automationrule_change", args=[rule.pk]))


class RuleStateMixin:
    """For AutomationRuleAdmin: the state column, the state actions' URLs and the page's state panel."""

    @admin.display(description="state")
    def state(self, obj: AutomationRule):
        label = rule_state(obj)
        if obj.paused_at is not None:
            return format_html(
                '<span data-rule-state="{}" title="Paused {} UTC by {}">{}</span>',
                label,
                f"{obj.paused_at:%Y-%m-%d %H:%M}",
                obj.paused_by,
                label,
            )
        return format_html('<span data-rule-state="{}">{}</span>', label, label)

    def rule_state_urls(self):
        return [
            path(
                "<path:object_id>/state/<str:action>/",
                self.admin_site.admin_view(lambda request, **kw: rule_state_view(self, request, **kw)),
                name="automations_automationrule_state",
            )
        ]

    def rule_state_context(self, request, obj: AutomationRule) -> dict:
        return {
            "rule_state": rule_state(obj),
            "rule_state_names": RuleState,
            "may_change_state": self.has_change_permission(request, obj),
            "unsent": unsent_per_step(rule_id=obj.pk),
            "resume_limit": format_delay(obj.resume_skip_after),
        }
