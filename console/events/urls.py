from django.urls import path

from console.events import views

urlpatterns = [
    path("", views.events_page, name="events"),
]
