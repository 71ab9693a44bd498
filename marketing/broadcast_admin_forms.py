"""The broadcast admin's forms: composing a broadcast (with its A/B variants and the frequency-cap override) and the
small forms behind the broadcast page's buttons. They only read and check input; the writes are marketing.broadcasts'.
"""

from django import forms
from django.core.exceptions import ValidationError

from automations.forms import EXAMPLES, DelayField
from automations.models import EmailTemplate, TemplateCategory
from customers.models import Customer, Topic

from .broadcast_models import Broadcast

EXTRA_LABELS = ("B", "C", "D")


def marketing_templates():
    """The templates a broadcast may use: marketing, not retired, and not a broadcast's own subject copy."""
    return (
        EmailTemplate.objects.filter(category=TemplateCategory.MARKETING, retired=False)
        .exclude(name__contains="[broadcast ")
        .order_by("name")
    )


class BroadcastComposeForm(forms.ModelForm):
    template = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.none(),
        label="Template (variant A)",
        help_text="A marketing template, written and previewed in Automations → Email templates, the same editor as "
        "sequence steps.",
    )
    test_wait = DelayField(
        initial=Broadcast._meta.get_field("test_wait").default,
        label="A/B test wait",
        help_text=f"How long the test share runs before the rest get the winner. Written like {EXAMPLES}.",
    )

    class Meta:
        model = Broadcast
        fields = (
            "name",
            "topic",
            "segment",
            "when_held",
            "test_share_percent",
            "test_wait",
            "ignore_frequency_cap",
            "frequency_cap_override_reason",
        )
        labels = {
            "test_share_percent": "A/B test share (%)",
            "ignore_frequency_cap": "Ignore the frequency cap",
            "frequency_cap_override_reason": "Why it may ignore the frequency cap",
        }
        help_texts = {
            "test_share_percent": "The share of the audience that gets the test, split evenly between the variants.",
            "ignore_frequency_cap": "Only for a critical announcement. Consent, topics, suppressions and quiet hours "
            "still apply. Kept in the broadcast's audit with your name.",
            "frequency_cap_override_reason": "Required when the frequency cap is ignored.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = marketing_templates()
        self.fields["topic"].queryset = Topic.objects.filter(archived=False)
        self.fields["test_share_percent"].min_value = 1
        self.fields["test_share_percent"].max_value = 100
        self.fields["test_share_percent"].widget.attrs.update(min=1, max=100)
        for label in EXTRA_LABELS:
            self.fields[f"subject_{label.lower()}"] = forms.CharField(
                label=f"Subject of variant {label}",
                required=False,
                max_length=200,
                widget=forms.TextInput(attrs={"size": 70}),
                help_text="Subject-only A/B test: the template of variant A with this subject (Jinja2, like the "
                "template's subject).",
            )
        for label in EXTRA_LABELS:
            self.fields[f"template_{label.lower()}"] = forms.ModelChoiceField(
                queryset=marketing_templates(),
                label=f"Template of variant {label}",
                required=False,
                help_text="Subject-and-content A/B test: another marketing template.",
            )

    def clean(self):
        cleaned = super().clean()
        subjects = [cleaned.get(f"subject_{label.lower()}", "").strip() for label in EXTRA_LABELS]
        templates = [cleaned.get(f"template_{label.lower()}") for label in EXTRA_LABELS]
        cleaned["subject_variants"] = [subject for subject in subjects if subject]
        cleaned["variant_templates"] = [template for template in templates if template]
        if cleaned["subject_variants"] and cleaned["variant_templates"]:
            raise ValidationError(
                "An A/B test varies either the subject (extra subjects) or the whole email (extra templates), not "
                "both: empty one of the two."
            )
        if cleaned.get("ignore_frequency_cap") and not (cleaned.get("frequency_cap_override_reason") or "").strip():
            self.add_error("frequency_cap_override_reason", "Say why this broadcast may ignore the frequency cap.")
        return cleaned

    @property
    def variant_count(self) -> int:
        data = getattr(self, "cleaned_data", {})
        return 1 + len(data.get("subject_variants") or []) + len(data.get("variant_templates") or [])


class CustomerLookupField(forms.CharField):
    """A customer by id or email address; empty for none (the sample customer)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def clean(self, value):
        text = (super().clean(value) or "").strip()
        if not text:
            return None
        if text.isascii() and text.isdigit() and len(text) <= 18:
            found = Customer.objects.filter(pk=int(text)).first()
        else:
            found = Customer.objects.filter(email__iexact=text).first()
        if found is None:
            raise ValidationError(f"No customer with the id or email address {text[:60]!r}.")
        return found


class CustomerChoiceForm(forms.Form):
    customer = CustomerLookupField(label="For customer (id or email; empty: a sample customer)")


class ScheduleForm(forms.Form):
    at = forms.DateTimeField(
        label="Start sending at (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class PauseForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class CancelForm(forms.Form):
    confirm = forms.ChoiceField(choices=[("yes", "yes")])


class CapOverrideForm(forms.Form):
    ignore = forms.BooleanField(required=False, label="Ignore the frequency cap")
    reason = forms.CharField(max_length=300, required=False, label="Why")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("ignore") and not (cleaned.get("reason") or "").strip():
            raise ValidationError("Say why this broadcast may ignore the frequency cap.")
        return cleaned
