from importlib import import_module

import pytest
from django.apps import apps


@pytest.fixture
def default_flows(db):
    """The default rules and templates of automations' data migrations: a transactional test that ran before has
    flushed them (as tests/automations/conftest.py puts them back for its own tests)."""
    import_module("automations.migrations.0002_default_flows").create_defaults(apps, None)
    import_module("automations.migrations.0007_dunning_timed_to_stripe").time_dunning_to_stripe(apps, None)
    import_module("automations.migrations.0012_win_back_campaigns").mark_win_back_rules(apps, None)
