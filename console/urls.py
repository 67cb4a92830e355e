from django.contrib import admin
from django.urls import include, path

from console.api import api

handler500 = "console.core.errors.server_error"

urlpatterns = [
    path("", include("console.dashboard.urls")),
    path("accounts/", include("console.accounts.urls")),
    path("alerts/", include("console.alerts.urls")),
    path("runbooks/", include("console.runbooks.urls")),
    path("", include("console.backups.urls")),
    path("events/", include("console.events.urls")),
    path("releases/", include("console.releases.urls")),
    path("reports/", include("console.reports.urls")),
    path("notifications/", include("console.notifications.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),  # /metrics
]
