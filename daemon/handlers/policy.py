"""What every handler kind shares: limits, errors, and the operator's policy.

The policy gates the kinds that reach outside the process (``http``, ``python``,
``shell``); it is checked when a handler is defined (parse.py) and again when it
runs (run.py), because it can be tightened after the definition was stored.
"""

from __future__ import annotations

from dataclasses import dataclass

LOG_LEVELS: tuple[str, ...] = ("info", "warning", "error")
HTTP_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "HEAD")

MAX_SLEEP_MS = 3_600_000
MAX_MESSAGE_CHARS = 4096
MAX_URL_CHARS = 2048
MAX_ARGV_ITEMS = 64
MAX_ARG_CHARS = 4096
# Results land in the replicated execution history, so they must stay small.
MAX_RESULT_BYTES = 16_384
OUTPUT_TAIL_CHARS = 1024

DEFAULT_FAIL_MESSAGE = "fail handler: failed on purpose"


class HandlerError(ValueError):
    """A handler definition is invalid or not allowed; the message is one user-facing line."""


class HandlerFailure(Exception):
    """One attempt of a handler failed; the message is one line for the execution record."""


@dataclass(frozen=True)
class HandlerPolicy:
    http_allow: tuple[str, ...] = ()
    python_allow: tuple[str, ...] = ()
    shell_enabled: bool = False
    shell_allow: tuple[str, ...] = ()
    http_timeout_s: float = 10.0


def url_allowed(url: str, allow: tuple[str, ...]) -> bool:
    """True when ``url`` starts with an allowed prefix at a URL boundary.

    A bare prefix match would let ``http://api.example`` admit ``http://api.example.evil``
    or ``http://api.example@evil``, so the character after the prefix must end a component.
    """
    for prefix in allow:
        if not prefix or not url.startswith(prefix):
            continue
        rest = url[len(prefix) :]
        if prefix.endswith("/") or rest == "" or rest[0] in "/?#":
            return True
    return False


# The whole environment a shell command gets: never the node's own (RAFT_PASSWORD,
# DAEMON_TOKEN and, under `make run`, the console's secrets live there).
SHELL_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}


def shell_allowed(argv: list[str], allow: tuple[str, ...]) -> bool:
    """True when ``argv`` matches one allow-listed template word for word.

    A template is a command line split on whitespace; the word ``*`` stands for exactly
    one argument of any value. ``"uptime"`` allows only ``["uptime"]``, and
    ``"systemctl restart *"`` allows ``["systemctl", "restart", "nginx"]`` but not
    ``["systemctl", "stop", "nginx"]``: allow-listing the executable alone would let a
    definition run ``sh -c <anything>``.
    """
    for template in allow:
        words = template.split()
        if len(words) == len(argv) and all(w in ("*", a) for w, a in zip(words, argv, strict=True)):
            return True
    return False


def show(value: object, limit: int = 60) -> str:
    """Render a wire value inside a one-line error message without letting it sprawl."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"
