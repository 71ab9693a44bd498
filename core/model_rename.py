"""Renaming a model in a migration without taking anything from staff.

`RenameModel` keeps the table's rows and Django renames the model's ContentType, but the permissions keep their old
codenames (`view_<old>`), and the next post_migrate creates new ones (`view_<new>`) that no group holds. Add
`migrations.RunPython(permissions_follow_model_rename(app_label, old, new), migrations.RunPython.noop)` after the
`RenameModel`: the groups and users keep what they were granted, under the new names.
"""

from collections.abc import Callable


def permissions_follow_model_rename(app_label: str, old_model: str, new_model: str) -> Callable:
    old_suffix, new_suffix = f"_{old_model.lower()}", f"_{new_model.lower()}"

    def rename(apps, schema_editor) -> None:
        Permission = apps.get_model("auth", "Permission")
        for permission in Permission.objects.filter(content_type__app_label=app_label, codename__endswith=old_suffix):
            new_codename = permission.codename.removesuffix(old_suffix) + new_suffix
            if Permission.objects.filter(content_type_id=permission.content_type_id, codename=new_codename).exists():
                continue  # already made under the new name (a migration run backwards and forwards again)
            permission.codename = new_codename
            permission.save(update_fields=["codename"])

    return rename
