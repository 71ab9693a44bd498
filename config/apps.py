from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself as an app, so project-wide management commands (install_schedules) have a home."""

    name = "config"
    label = "project"
    verbose_name = "ModReady"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .roles import roles_sync

        # After every migrate: permissions exist only once all apps have migrated.
        post_migrate.connect(roles_sync, dispatch_uid="modready.roles_sync")
