"""Bearer tokens with roles read < operate < admin."""

from __future__ import annotations

import hashlib
import hmac

from daemon.config import Config

# "health" is not a token role: it marks the reads the runbook's anonymous `curl | jq`
# lines make (health, metrics, queue), open to anonymous callers unless
# auth.anonymousRead is false. Definitions and results need at least "read".
RANK = {"health": 0, "read": 1, "operate": 2, "admin": 3}
ANONYMOUS_SCOPES = ("none", "health", "all")


def internal_token(raft_password: str) -> str:
    """Nodes read each other's /health/node with a token every node can derive
    from the shared Raft secret, so anonymousRead=false still works inside."""
    return hmac.new(raft_password.encode(), b"daemon-internal-read", hashlib.sha256).hexdigest()


class TokenBook:
    def __init__(self, config: Config) -> None:
        self.disabled = config.auth_disabled
        self.anonymous_read = config.anonymous_read
        # Compare digests, not tokens: constant-time and no plaintext kept around.
        self._roles = {self._digest(t): role for t, role in config.tokens}
        self._roles[self._digest(internal_token(config.raft.password))] = "read"

    def anonymous_allowed(self, needed: str) -> bool:
        if self.anonymous_read == "all":
            return needed in ("health", "read")
        return self.anonymous_read == "health" and needed == "health"

    def is_anonymous(self, authorization: str | None) -> bool:
        """True when the caller shows no valid token (and auth is on)."""
        return not self.disabled and self.role_of(authorization) is None

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def role_of(self, authorization: str | None) -> str | None:
        # The auth scheme is case-insensitive (RFC 9110 11.1): "bearer x" is a bearer token.
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = self._digest(token.strip())
        for known, role in self._roles.items():
            if hmac.compare_digest(known, digest):
                return role
        return None

    def check(self, authorization: str | None, needed: str) -> tuple[int, str] | None:
        """None when allowed, else (status, message)."""
        if self.disabled or self.anonymous_allowed(needed):
            return None
        role = self.role_of(authorization)
        if role is None:
            if authorization:
                return 401, "invalid bearer token"
            return (
                401,
                "authentication required: send 'Authorization: Bearer <token>' with the "
                f"{'read' if needed == 'health' else needed} role",
            )
        if RANK[role] < RANK[needed]:
            return 403, f"role '{role}' may not do this; it needs '{needed}'"
        return None
