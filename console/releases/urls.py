from django.urls import path

from console.releases import views

urlpatterns = [
    path("", views.releases_page, name="releases"),
    path("build/", views.build_release, name="release-build"),
    path("upload/", views.upload_release, name="release-upload"),
    path(
        "<str:name>/<str:change>/",
        views.change_release,
        name="release-change",
    ),
]
