from django.urls import path

from console.backups import views

urlpatterns = [
    path("clusters/<slug:name>/backups/", views.backup_list, name="cluster-backups"),
    path("clusters/<slug:name>/backups/rows/", views.backup_rows, name="cluster-backup-rows"),
    path("clusters/<slug:name>/backups/take/", views.take, name="backup-take"),
    path("backups/<int:backup_id>/verify/", views.verify, name="backup-verify"),
    path("backups/<int:backup_id>/restore/", views.restore, name="backup-restore"),
    path("backups/<int:backup_id>/download/", views.download, name="backup-download"),
]
