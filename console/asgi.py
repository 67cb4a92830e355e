"""The ASGI entry point daphne serves: HTTP through Django, websockets through Channels."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

from console.env import SettingsError

try:
    from django.core.asgi import get_asgi_application

    # Set up Django before importing anything that touches models.
    django_asgi_app = get_asgi_application()
except SettingsError as err:
    sys.exit(f"console: configuration error: {err}")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from console.routing import websocket_urlpatterns

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
