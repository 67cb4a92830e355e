from django.urls import path

from console.dashboard import kube_clusters, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("kubernetes/clusters/new/", kube_clusters.new_page, name="kube-cluster-new"),
    path("clusters/<slug:name>/", views.cluster_detail, name="cluster-detail"),
    path("clusters/<slug:name>/history/", views.cluster_history, name="cluster-history"),
    path("clusters/<slug:name>/operations/", views.cluster_operations, name="cluster-operations"),
    path("clusters/<slug:name>/samples.json", views.samples, name="cluster-samples"),
    path(
        "clusters/<slug:name>/fragments/<slug:part>/",
        views.fragment,
        name="cluster-fragment",
    ),
]
