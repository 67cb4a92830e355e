"""Which TCP ports the local system needs, and whether something else already holds them."""

import errno
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class PortClaim:
    port: int
    owner: str  # "the console", "daemon node 1 (raft)"
    variable: str  # the environment variable that moves it
    moves: str  # what moving it moves: "the console", "the daemon cluster"

    def taken_message(self) -> str:
        detail = "" if self.owner == self.moves else f" (needed by {self.owner})"
        return (
            f"port {self.port} is already in use{detail}; set {self.variable} to move {self.moves}"
        )


def port_is_free(port: int) -> bool:
    """True when nothing listens on `port` on any interface.

    Binding the wildcard address fails when any listener holds the port, whichever
    interface it chose. SO_REUSEADDR keeps sockets in TIME_WAIT from a previous run
    from counting as taken, as the servers themselves set it too.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def first_taken(claims: list[PortClaim]) -> PortClaim | None:
    return next((claim for claim in claims if not port_is_free(claim.port)), None)


def is_answering(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
