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
        from .staff_accounts import register as staff_accounts_register

        # After every migrate: permissions exist only once all apps have migrated.
        post_migrate.connect(roles_sync, dispatch_uid="modready.roles_sync")
        # Users: the "New staff member" form and an add form that asks for the email (django.contrib.auth's admin is
        # registered by the admin's autodiscover, which ran before this app's ready()).
        from django.contrib import admin

        staff_accounts_register(admin.site)


class ModReadyAdminConfig(AdminConfig):
    """Django's admin with our site as the default one, so every `@admin.register` lands on the two-factor site."""

    default_site = "config.admin_site.ModReadyAdminSite"
