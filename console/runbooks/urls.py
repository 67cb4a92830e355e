from django.urls import path

from console.runbooks import drill_views, views

urlpatterns = [
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/steps/", views.run_steps, name="run-steps"),
    path("runs/<int:run_id>/cancel/", views.cancel_run, name="run-cancel"),
    path("runs/<int:run_id>/resume/", views.resume_run, name="run-resume"),
    path("runs/<int:run_id>/pause/", views.pause_run, name="run-pause"),
    path("runs/<int:run_id>/abort/", views.abort_run, name="run-abort"),
    path("runs/<int:run_id>/promote/", views.promote_run, name="run-promote"),
    path("clusters/<slug:name>/request/", views.request_run, name="runbook-request"),
    path("clusters/<slug:name>/drills/", drill_views.drills, name="runbook-drills"),
    path("clusters/<slug:name>/runs/", views.runs_fragment, name="runbook-runs"),
]
