from django.contrib import admin

from console.backups.models import Backup, BackupSchedule


@admin.register(BackupSchedule)
class BackupScheduleAdmin(admin.ModelAdmin):
    list_display = ("cluster", "enabled", "interval_hours", "keep_last", "keep_weekly")


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ("id", "cluster", "created_at", "taken_by", "source_node", "verification")
    list_filter = ("cluster", "verification")
    readonly_fields = [f.name for f in Backup._meta.fields]
