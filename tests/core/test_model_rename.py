"""A renamed model's permissions follow its name, so staff groups keep what they were granted."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from core.model_rename import permissions_follow_model_rename

pytestmark = pytest.mark.django_db


def test_the_groups_keep_their_grants_under_the_new_codename():
    content_type = ContentType.objects.create(app_label="renamed_app", model="newname")
    old = Permission.objects.create(content_type=content_type, codename="view_oldname", name="Can view old")
    group = Group.objects.create(name="support-readers")
    group.permissions.add(old)

    permissions_follow_model_rename("renamed_app", "OldName", "NewName")(apps, None)

    assert list(group.permissions.values_list("codename", flat=True)) == ["view_newname"]


def test_a_codename_already_there_is_left_alone():
    content_type = ContentType.objects.create(app_label="renamed_app", model="newname")
    Permission.objects.create(content_type=content_type, codename="view_oldname", name="Can view old")
    Permission.objects.create(content_type=content_type, codename="view_newname", name="Can view new")

    permissions_follow_model_rename("renamed_app", "OldName", "NewName")(apps, None)

    assert sorted(Permission.objects.filter(content_type=content_type).values_list("codename", flat=True)) == [
        "view_newname",
        "view_oldname",
    ]
