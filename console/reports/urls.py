from django.urls import path

from console.reports import views

urlpatterns = [
    path("", views.index, name="reports"),
    path("<slug:name>/daily/", views.daily, name="report-daily"),
    path("<slug:name>/weekly/", views.weekly, name="report-weekly"),
    path("<slug:name>/monthly/", views.monthly, name="report-monthly"),
]
