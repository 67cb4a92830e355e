"""Operation handlers: declared kinds from a registry, never code from the wire.

An operation's ``handler`` is validated once by :func:`parse_handler` into a plain,
JSON-able dict that goes into the replicated state, and run by :func:`run_handler`
on the node that executes it. Nothing here evaluates text it was sent: the runbook's
``"console.log(\\"success\\")"`` becomes a ``log`` handler whose message is that string.

Kinds that reach outside the process (``http``, ``python``, ``shell``) are gated by
the operator's :class:`HandlerPolicy`, checked when a handler is defined and again
when it runs, because the policy can be tightened after the definition was stored.

`policy` holds the limits, errors and the policy; `parse` the definitions; `run`
one attempt of a stored handler. The kind names are daemon.contract.HANDLER_KINDS.
"""

from __future__ import annotations

from daemon.contract import HANDLER_KINDS
from daemon.handlers.parse import parse_handler
from daemon.handlers.policy import (
    HandlerError,
    HandlerFailure,
    HandlerPolicy,
    url_allowed,
)
from daemon.handlers.run import run_handler

__all__ = [
    "HANDLER_KINDS",
    "HandlerError",
    "HandlerFailure",
    "HandlerPolicy",
    "parse_handler",
    "run_handler",
    "url_allowed",
]
