"""The admin's condition row: a field, an operator and the value as staff write it, read and checked per field by
marketing.conditions (a wrong value is an error on that row, never a 500)."""

from django import forms
from django.core.exceptions import ValidationError

from .conditions import FIELDS, OPERATOR_LABELS, value_parse, value_text
from .models import SegmentCondition


class SegmentConditionForm(forms.ModelForm):
    value = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"size": 50}),
        help_text="See “Writing conditions” below: a list separated by commas, a number of days, two dates, or "
        "nothing for yes / no.",
    )

    class Meta:
        model = SegmentCondition
        fields = ("field", "operator", "value")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk and instance.field in FIELDS and instance.operator in OPERATOR_LABELS:
            self.initial["value"] = value_text(field=instance.field, operator=instance.operator, value=instance.value)

    def clean(self):
        cleaned = super().clean()
        field, operator = cleaned.get("field"), cleaned.get("operator")
        if field and operator:
            try:
                cleaned["value"] = value_parse(field=field, operator=operator, text=cleaned.get("value") or "")
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    self.add_error(name if name in self.fields else None, messages)
        return cleaned
