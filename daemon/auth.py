"""Bearer tokens with roles read < operate < admin."""

from __future__ import annotations

import hashlib
import hmac

from daemon.config import Config

RANK = {"read": 1, "operate": 2, "admin": 3}


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
        if self.disabled or (needed == "read" and self.anonymous_read):
            return None
        role = self.role_of(authorization)
        if role is None:
            if authorization:
                return 401, "invalid bearer token"
            return (
                401,
                f"authentication required: send 'Authorization: Bearer <token>' with the {needed} role",
            )
        if RANK[role] < RANK[needed]:
            return 403, f"role '{role}' may not do this; it needs '{needed}'"
        return None
