from django.urls import path

from console.alerts import views

urlpatterns = [
    path("", views.alerts_page, name="alerts"),
    path("<int:alert_id>/ack/", views.ack, name="alert-ack"),
    path("<int:alert_id>/silence/", views.silence, name="alert-silence"),
]
