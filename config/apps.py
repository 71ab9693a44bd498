from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


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


class ModReadyAdminConfig(AdminConfig):
    """Django's admin with our site as the default one, so every `@admin.register` lands on the two-factor site."""

    default_site = "config.admin_site.ModReadyAdminSite"
