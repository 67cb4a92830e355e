from django.urls import path

from console.clusters import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
