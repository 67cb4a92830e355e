from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    # No Cluster model yet: show where the local cluster is expected, so an empty page
    # still tells the operator something true.
    first_port = settings.DAEMON_HTTP_PORT
    local_nodes = [f"http://127.0.0.1:{first_port + i}" for i in range(3)]
    return render(request, "clusters/dashboard.html", {"local_nodes": local_nodes})
