"""A node's TLS certificate expiry, read from its HTTPS endpoint (the nodes do not
report it). Verification is off on purpose: we read the date, we do not trust the peer,
and an expired certificate (the case worth reporting) would fail verification."""

from __future__ import annotations

import socket
import ssl
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509

PLAIN_HTTP = "serves plain HTTP: no certificate"


def certificate_days_left(
    url: str, now: datetime, timeout_s: float = 2.0
) -> tuple[int | None, str]:
    """(days left, a short note); days are None when no certificate could be read."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None, PLAIN_HTTP
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        address = (parts.hostname, parts.port or 443)
        with (
            socket.create_connection(address, timeout_s) as sock,
            context.wrap_socket(sock, server_hostname=parts.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as err:
        return None, f"no TLS answer ({type(err).__name__})"
    if not der:
        return None, "no certificate presented"
    expires = x509.load_der_x509_certificate(der).not_valid_after_utc
    return (expires - now).days, f"expires {expires:%Y-%m-%d}"
