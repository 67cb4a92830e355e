from django.urls import path

from console.notifications import views

urlpatterns = [
    path("", views.page, name="notifications"),
    path("channels/", views.add, name="notification-channel-add"),
    path("channels/<int:channel_id>/test/", views.test, name="notification-channel-test"),
    path("channels/<int:channel_id>/delete/", views.delete, name="notification-channel-delete"),
]
