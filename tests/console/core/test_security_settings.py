"""Security settings (issue 14, points 9 and 13), read by a real `manage.py` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, embedded_defaults_env

SHOW = (
    "import json; from django.conf import settings as s; from django.views.debug import "
    "get_default_exception_reporter_filter as f; safe = f().get_safe_settings(); "
    "print(json.dumps({'debug': s.DEBUG, 'hsts': getattr(s, 'SECURE_HSTS_SECONDS', 0), "
    "'proxy': getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
    "'secure_cookie': s.SESSION_COOKIE_SECURE, 'broker': safe['CELERY_BROKER_URL'], "
    "'redis': safe['REDIS_URL'], 'layers': str(safe['CHANNEL_LAYERS'])}))"
)
CREDENTIAL = "s3cret-in-a-url"


def settings_of(tmp_path: Path, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW],
        cwd=REPO_ROOT,
        env=embedded_defaults_env(CONSOLE_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_debug_is_off_unless_asked_for_and_credentials_in_urls_are_masked(
    tmp_path: Path,
) -> None:
    url = f"redis://:{CREDENTIAL}@127.0.0.1:1/9"
    shown = settings_of(tmp_path, REDIS_URL=url, CELERY_BROKER_URL=url)
    assert shown["debug"] is False
    for key in ("broker", "redis", "layers"):
        assert CREDENTIAL not in shown[key], key
    assert settings_of(tmp_path, DEBUG="1")["debug"] is True


def test_production_sends_hsts_and_secure_cookies_but_trusts_no_proxy_unless_told(
    tmp_path: Path,
) -> None:
    production = {
        "CONSOLE_ENV": "production",
        "SECRET_KEY": "a-production-secret-key-that-is-long-enough-to-pass-checks",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ALLOWED_HOSTS": "console.example",
    }
    shown = settings_of(tmp_path, **production)
    assert shown["hsts"] >= 31_536_000
    assert shown["secure_cookie"] is True
    assert shown["proxy"] is None
    trusted = settings_of(tmp_path, CONSOLE_TRUSTED_PROXY="1", **production)
    assert trusted["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_no_template_has_an_inline_script_or_event_handler_the_csp_would_block() -> None:
    import re

    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
    handler = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)
    found = []
    for path in sorted((REPO_ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        if inline_script.search(text) or handler.search(text):
            found.append(str(path.relative_to(REPO_ROOT)))
    assert found == [], "move these scripts to static/ (CSP: script-src 'self')"
