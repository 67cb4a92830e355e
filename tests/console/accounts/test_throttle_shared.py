"""The login throttle's counts are shared by every console process through Redis, and a
Redis that does not answer leaves sign-ins possible and still throttled, per process
(console/accounts/throttle.py, CACHES in console/settings.py)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings

from console.accounts import throttle
from daemon.localcluster import free_port
from tests.conftest import REPO_ROOT, embedded_defaults_env

ADDRESS = "203.0.113.9"


def locked_in_another_process(username: str) -> bool:
    """Ask a fresh console process, as another replica would."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "console")
    env = embedded_defaults_env(REDIS_URL=settings.REDIS_URL, CACHE_KEY_PREFIX=prefix)
    code = (
        "import django; django.setup();"
        "from console.accounts import throttle;"
        f"print(throttle.locked({username!r}, {ADDRESS!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "console.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.skipif(
    not settings.REDIS_URL, reason="needs REDIS_URL: without it the counts are per process"
)
def test_a_lockout_made_in_one_console_process_holds_in_another(db: None) -> None:
    assert not locked_in_another_process("shared-victim")
    for _ in range(throttle.FAILURES_PER_USER):
        throttle.record_failure("shared-victim", ADDRESS)
    assert throttle.locked("shared-victim", ADDRESS)
    assert locked_in_another_process("shared-victim")


def test_sign_ins_are_still_throttled_per_process_when_redis_does_not_answer(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    with (
        override_settings(CACHES={**settings.CACHES, "default": unreachable}),
        caplog.at_level(logging.WARNING, logger="console.accounts"),
    ):
        throttle._cache_failed.last_at = -throttle.WARN_EVERY_S
        assert not throttle.locked("lonely-victim", ADDRESS)
        for _ in range(throttle.FAILURES_PER_USER):
            throttle.record_failure("lonely-victim", ADDRESS)
        assert throttle.locked("lonely-victim", ADDRESS)
    warnings = [r for r in caplog.records if "shared cache failed" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
