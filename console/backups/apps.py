from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "console.backups"
    label = "backups"
    verbose_name = "Backups"

    def ready(self) -> None:
        # The backup, verify_backup and restore actions join the runbook actions here:
        # this app sits above console.runbooks, which cannot import it.
        from console.backups.actions import register

        register()
