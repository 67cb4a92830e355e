"""Certificate expiry read from a real TLS server the test starts on loopback."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from console.clusters.models import Node
from console.reports.tls import certificate_days_left
from console.reports.weekly import weekly_report
from tests.conftest import free_port
from tests.console.reports.support import make_cluster


def write_certificate(folder: Path, expires: dt.datetime) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unrdf-daemon-0")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(expires - dt.timedelta(days=365))
        .not_valid_after(expires)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def tls_server(folder: Path, expires: dt.datetime) -> Iterator[int]:
    """Accepts TLS handshakes on a free loopback port until the block ends."""
    cert_path, key_path = write_certificate(folder, expires)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_the_days_left_come_from_the_certificate_the_node_serves(tmp_path: Path) -> None:
    now = timezone.now()
    with tls_server(tmp_path, now + dt.timedelta(days=20, hours=1)) as port:
        assert certificate_days_left(f"https://127.0.0.1:{port}", now) == (
            20,
            f"expires {(now + dt.timedelta(days=20, hours=1)):%Y-%m-%d}",
        )


def test_an_expired_certificate_shows_negative_days(tmp_path: Path) -> None:
    now = timezone.now()
    with tls_server(tmp_path, now - dt.timedelta(days=3, hours=1)) as port:
        days, _ = certificate_days_left(f"https://127.0.0.1:{port}", now)
    assert days == -4  # floor of -3 days 1 hour


def test_a_node_that_does_not_answer_has_no_days_and_says_why() -> None:
    days, note = certificate_days_left(f"https://127.0.0.1:{free_port()}", timezone.now())
    assert days is None and note == "no TLS answer (ConnectionRefusedError)"


@pytest.mark.django_db
def test_the_weekly_review_shows_each_https_nodes_expiry(tmp_path: Path) -> None:
    cluster = make_cluster()
    with tls_server(tmp_path, timezone.now() + dt.timedelta(days=9, hours=2)) as port:
        Node.objects.create(cluster=cluster, name="n0", http_url=f"https://127.0.0.1:{port}")
        (line,) = weekly_report(cluster).nodes
    assert line.tls_days_left == 9
