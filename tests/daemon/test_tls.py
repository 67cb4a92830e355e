"""HTTPS on http.tlsPort with http.tlsCert/tlsKey, alongside plain HTTP on http.port.

The runbook checks `curl -I https://localhost:8443`; here the certificate is a fresh
self-signed one for 127.0.0.1 and localhost, and the client verifies it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cluster_harness import OPERATE_TOKEN, READ_TOKEN, Cluster, free_port

READ = {"Authorization": f"Bearer {READ_TOKEN}"}  # definitions need a read token

pytestmark = pytest.mark.cluster


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class TlsCluster(Cluster):
    tls_port: int = 0
    cert: Path = Path()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    base = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(base)
    tls_port = free_port()
    cluster = TlsCluster(
        base / "cluster",
        size=1,
        overrides={"http": {"tlsCert": str(cert), "tlsKey": str(key), "tlsPort": tls_port}},
    )
    cluster.tls_port, cluster.cert = tls_port, cert
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


def verifying(cluster: TlsCluster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cluster.cert))


def test_head_on_the_tls_port_answers_200_like_the_runbooks_curl(tls_cluster: TlsCluster) -> None:
    response = httpx.head(
        f"https://127.0.0.1:{tls_cluster.tls_port}/", verify=verifying(tls_cluster), timeout=5
    )
    assert response.status_code == 200


def test_https_by_the_name_localhost_verifies_against_the_configured_certificate(
    tls_cluster: TlsCluster,
) -> None:
    response = httpx.get(
        f"https://localhost:{tls_cluster.tls_port}/health/live",
        verify=verifying(tls_cluster),
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json() == {"status": "alive", "node": "unrdf-daemon-0"}


def test_the_tls_port_serves_the_whole_api_including_writes(tls_cluster: TlsCluster) -> None:
    url = f"https://127.0.0.1:{tls_cluster.tls_port}"
    with httpx.Client(base_url=url, verify=verifying(tls_cluster), timeout=10) as client:
        created = client.post(
            "/operations",
            json={"id": "tls-op", "handler": {"kind": "noop"}},
            headers={"Authorization": f"Bearer {OPERATE_TOKEN}"},
        )
        assert created.status_code in (200, 201), created.text
        assert client.get("/operations/tls-op", headers=READ).json()["id"] == "tls-op"


def test_the_tls_port_speaks_only_tls(tls_cluster: TlsCluster) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_cluster.tls_port}/health/live", timeout=5)


def test_plain_http_keeps_working_on_http_port(tls_cluster: TlsCluster) -> None:
    node = tls_cluster.nodes[0]
    assert httpx.head(node.url + "/", timeout=5).status_code == 200
    assert tls_cluster.get(node, "/health/startup").json() == {"status": "ready"}
    assert tls_cluster.get(node, "/operations").status_code == 200


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_keep_alive_requests_are_answered_without_a_delayed_ack_stall(
    tls_cluster: TlsCluster, scheme: str
) -> None:
    # Without TCP_NODELAY on accepted connections, each request after the first on a
    # kept-alive connection waits ~40 ms for the client's delayed ACK (Nagle).
    port = tls_cluster.tls_port if scheme == "https" else tls_cluster.nodes[0].http_port
    with httpx.Client(verify=verifying(tls_cluster), timeout=5, headers=READ) as client:
        url = f"{scheme}://127.0.0.1:{port}/operations"
        client.get(url)
        times = []
        for _ in range(15):
            response = client.get(url)
            assert response.status_code == 200
            times.append(response.elapsed.total_seconds())
    assert sorted(times)[len(times) // 2] < 0.02, times


async def test_peers_verify_a_members_certificate_before_sending_it_the_internal_token(
    tls_cluster: TlsCluster,
) -> None:
    from daemon.peers import Peers

    url = f"https://localhost:{tls_cluster.tls_port}"
    trusting = Peers(None, "unused-raft-secret-0123456789", str(tls_cluster.cert))  # type: ignore[arg-type]
    strict = Peers(None, "unused-raft-secret-0123456789")  # type: ignore[arg-type]
    for peers in (trusting, strict):
        peers.open()
    try:
        view = await trusting.node_view(url)
        assert view is not None and view["name"] == "unrdf-daemon-0"
        # A certificate nobody vouched for (a made-up member's, say) gets nothing.
        assert await strict.node_view(url) is None
    finally:
        for peers in (trusting, strict):
            await peers.close()
