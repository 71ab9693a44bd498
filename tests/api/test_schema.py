"""The OpenAPI schema generates without a warning: production's deploy check (`check --deploy --fail-level WARNING`,
run by CI) refuses drf-spectacular's warnings, such as two choice sets named alike (the "status" of a broadcast and
of a subscription, the "outcome" of a cancel session and of a workflow step) that need an ENUM_NAME_OVERRIDES entry.
Without the two entries below this failed with "Failing as requested due to warnings"."""

from django.core.management import call_command


def test_the_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    assert "BroadcastStatusEnum:" in text and "CancelSessionOutcomeEnum:" in text
