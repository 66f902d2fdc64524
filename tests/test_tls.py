"""keyless.tls: the local CA, the server certificate, user certificates, real handshakes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests._support.net import text_handler

from keyless.errors import ConfigurationError
from keyless.tls import TLSFiles, ca_permitted_names, ensure_local_tls, trust_instructions, user_tls

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


# --------------------------------------------------------------------------- helpers


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _snapshot(files: TLSFiles) -> dict[str, bytes]:
    assert files.ca_cert is not None
    ca_key = files.ca_cert.with_name("ca-key.pem")
    return {p.name: p.read_bytes() for p in (files.ca_cert, ca_key, files.cert, files.key)}


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


_Hello = text_handler(lambda _: b"hello over tls")


@pytest.fixture
def tls_files(tmp_path: Path) -> TLSFiles:
    return ensure_local_tls(tmp_path / "data")


@pytest.fixture
def https_port(tls_files: TLSFiles) -> Iterator[int]:
    """A tiny HTTPS server on 127.0.0.1 (ssl-wrapped socket, own thread) using the local certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _client_context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default; be as strict here
    return context


# --------------------------------------------------------------------------- creation and reuse


def test_first_call_creates_ca_and_server_files(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "data")

    tls_dir = tmp_path / "data" / "tls"
    assert files == TLSFiles(
        ca_cert=tls_dir / "ca.pem", cert=tls_dir / "server.pem", key=tls_dir / "server-key.pem"
    )
    assert _mode(tls_dir) == 0o700
    assert _mode(tls_dir / "ca-key.pem") == 0o600
    assert _mode(tls_dir / "server-key.pem") == 0o600
    assert _mode(tls_dir / "ca.pem") == 0o644
    assert _mode(tls_dir / "server.pem") == 0o644
    assert not list(tls_dir.glob("*.tmp"))


def test_ca_certificate_shape(tls_files: TLSFiles) -> None:
    assert tls_files.ca_cert is not None
    ca = x509.load_pem_x509_certificate(tls_files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(
        tls_files.ca_cert.with_name("ca-key.pem").read_bytes(), password=None
    )

    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    assert isinstance(ca_key.curve, ec.SECP256R1)
    cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    assert cn.startswith("keyless local CA ")
    assert len(cn) > len("keyless local CA ")
    assert ca.issuer == ca.subject
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=729) < lifetime < dt.timedelta(days=731)  # two years, not ten
    names = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert names.critical
    assert names.value.permitted_subtrees == [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    ]
    assert names.value.excluded_subtrees is None


def test_server_certificate_shape(tls_files: TLSFiles) -> None:
    leaf, ca = _chain(tls_files.cert)  # full chain: leaf then CA
    assert tls_files.ca_cert is not None
    assert ca.public_bytes(serialization.Encoding.PEM) == tls_files.ca_cert.read_bytes()
    server_key = serialization.load_pem_private_key(tls_files.key.read_bytes(), password=None)

    assert isinstance(server_key, ec.EllipticCurvePrivateKey)
    assert isinstance(server_key.curve, ec.SECP256R1)
    assert leaf.public_key() == server_key.public_key()
    leaf.verify_directly_issued_by(ca)
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == hashes.SHA256.name
    assert _sans(leaf) == (["localhost"], ["127.0.0.1", "::1"])
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    lifetime = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=396) < lifetime <= dt.timedelta(days=397)


def test_second_call_reuses_every_file(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path)
    before = _snapshot(first)

    second = ensure_local_tls(tmp_path)

    assert second == first
    assert _snapshot(second) == before


def test_new_hostname_reissues_server_certificate_but_keeps_ca(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    before = _snapshot(files)
    old_ca = x509.load_pem_x509_certificate(before["ca.pem"])

    again = ensure_local_tls(tmp_path, ["keyless.internal", "10.1.2.3"])

    after = _snapshot(again)
    # The same CA (key, subject, expiry), its certificate re-issued to permit the new names too.
    assert after["ca-key.pem"] == before["ca-key.pem"]
    new_ca = x509.load_pem_x509_certificate(after["ca.pem"])
    assert (new_ca.subject, new_ca.public_key(), new_ca.not_valid_after_utc) == (
        old_ca.subject,
        old_ca.public_key(),
        old_ca.not_valid_after_utc,
    )
    assert again.ca_cert is not None
    assert ca_permitted_names(again.ca_cert) == [
        "keyless.internal",
        "10.1.2.3",
        "localhost",
        "127.0.0.1",
        "::1",
    ]
    assert after["server-key.pem"] == before["server-key.pem"]  # same key: no key/cert mismatch window
    assert after["server.pem"] != before["server.pem"]
    leaf, ca = _chain(again.cert)
    leaf.verify_directly_issued_by(ca)
    # The new names come first; the names already served are kept.
    assert _sans(leaf) == (["keyless.internal", "localhost"], ["10.1.2.3", "127.0.0.1", "::1"])
    # A subset of what is covered now changes nothing.
    ensure_local_tls(tmp_path, ["localhost"])
    assert _snapshot(again) == after


def test_near_expiry_reissues_server_certificate(tmp_path: Path) -> None:
    start = dt.datetime.now(dt.UTC)
    files = ensure_local_tls(tmp_path, now=start)
    before = _snapshot(files)

    ensure_local_tls(tmp_path, now=start + dt.timedelta(days=300))  # 97 days left: keep it
    assert _snapshot(files) == before

    later = start + dt.timedelta(days=368)  # 29 days left: re-issue
    ensure_local_tls(tmp_path, now=later)

    after = _snapshot(files)
    assert after["server.pem"] != before["server.pem"]
    assert after["ca.pem"] == before["ca.pem"]
    assert after["ca-key.pem"] == before["ca-key.pem"]
    leaf, ca = _chain(files.cert)
    assert leaf.not_valid_before_utc < later
    # A server certificate never outlives its CA.
    assert leaf.not_valid_after_utc == min(
        ca.not_valid_after_utc, (later + dt.timedelta(days=397)).replace(microsecond=0)
    )


def test_expired_server_certificate_is_reissued(tmp_path: Path) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=500)
    files = ensure_local_tls(tmp_path, now=start)
    old_leaf, _ = _chain(files.cert)
    assert old_leaf.not_valid_after_utc < dt.datetime.now(dt.UTC)

    ensure_local_tls(tmp_path)

    leaf, ca = _chain(files.cert)
    assert leaf.not_valid_before_utc < dt.datetime.now(dt.UTC)
    assert leaf.not_valid_after_utc == ca.not_valid_after_utc  # capped by the CA's two years


def test_naive_now_is_taken_as_utc(tmp_path: Path) -> None:
    naive = dt.datetime(2031, 5, 6, 7, 8, 9)  # naive on purpose
    files = ensure_local_tls(tmp_path, now=naive)
    leaf, _ = _chain(files.cert)
    assert leaf.not_valid_before_utc == dt.datetime(2031, 5, 6, 7, 3, 9, tzinfo=dt.UTC)


def test_server_files_lost_are_recreated_with_the_same_ca(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    before = _snapshot(files)
    files.cert.unlink()
    files.key.unlink()

    ensure_local_tls(tmp_path)

    after = _snapshot(files)
    assert after["ca.pem"] == before["ca.pem"]
    assert after["server-key.pem"] != before["server-key.pem"]
    leaf, ca = _chain(files.cert)
    leaf.verify_directly_issued_by(ca)
    assert _mode(files.key) == 0o600


def test_foreign_server_certificate_is_replaced(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    other = ensure_local_tls(tmp_path / "other")  # a different CA
    files.cert.write_bytes(other.cert.read_bytes())

    ensure_local_tls(tmp_path)

    assert files.ca_cert is not None
    leaf, ca = _chain(files.cert)
    assert ca.public_bytes(serialization.Encoding.PEM) == files.ca_cert.read_bytes()
    leaf.verify_directly_issued_by(ca)


def test_ca_is_never_regenerated(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    assert files.ca_cert is not None
    ca_key = files.ca_cert.with_name("ca-key.pem")
    ca_key.unlink()

    with pytest.raises(ConfigurationError, match=r"ca-key\.pem"):
        ensure_local_tls(tmp_path, ["new.example.test"])  # a new name needs the CA key
    assert not ca_key.exists()

    files.ca_cert.write_text("not a certificate")
    ca_key.write_text("not a key")
    with pytest.raises(ConfigurationError) as caught:
        ensure_local_tls(tmp_path)
    assert any("ca.pem" in problem for problem in caught.value.problems)
    assert files.ca_cert.read_text() == "not a certificate"


def test_a_start_that_reuses_the_server_certificate_never_reads_the_ca_key(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    assert files.ca_cert is not None
    before = _snapshot(files)
    ca_key = files.ca_cert.with_name("ca-key.pem")
    offline = tmp_path / "offline-ca-key.pem"
    ca_key.rename(offline)  # the operator keeps the CA key elsewhere

    assert ensure_local_tls(tmp_path) == files  # served with the server key alone
    assert not ca_key.exists()

    offline.rename(ca_key)
    assert _snapshot(ensure_local_tls(tmp_path)) == before


def _rogue_leaf(files: TLSFiles, name: x509.GeneralName, out: Path) -> tuple[Path, Path]:
    """A server certificate for ``name`` signed with the local CA's key, as a thief of it would."""
    assert files.ca_cert is not None
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(files.ca_cert.with_name("ca-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rogue")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out / "rogue.pem", out / "rogue-key.pem"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + files.ca_cert.read_bytes())
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(
    ("name", "host"),
    [
        (x509.DNSName("login.microsoftonline.com"), "login.microsoftonline.com"),
        (x509.IPAddress(ipaddress.ip_address("10.9.8.7")), "10.9.8.7"),
    ],
)
def test_a_certificate_the_ca_signs_for_a_name_outside_its_constraints_is_refused(
    tls_files: TLSFiles, tmp_path: Path, name: x509.GeneralName, host: str
) -> None:
    assert tls_files.ca_cert is not None
    cert, key = _rogue_leaf(tls_files, name, tmp_path)
    rogue = TLSFiles(ca_cert=tls_files.ca_cert, cert=cert, key=key)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)subtree|name constraint"):
        _handshake(rogue, _client_context(tls_files.ca_cert), host)
    # The same client accepts the real server certificate for a permitted name.
    _handshake(tls_files, _client_context(tls_files.ca_cert), "localhost")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_refuses_a_certificate_outside_the_name_constraints(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    assert tls_files.ca_cert is not None
    cert, _ = _rogue_leaf(tls_files, x509.DNSName("login.microsoftonline.com"), tmp_path)
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(_chain(cert)[0].public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-CAfile", tls_files.ca_cert, leaf_only],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "subtree violation" in (result.stdout + result.stderr)


def test_httpx_and_requests_refuse_a_rogue_server_for_a_name_outside_the_constraints(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A rogue certificate for a permitted-looking address outside the list: 127.0.0.2 is loopback,
    reachable here, but not a name the CA may vouch for."""
    assert tls_files.ca_cert is not None
    cert, key = _rogue_leaf(tls_files, x509.IPAddress(ipaddress.ip_address("127.0.0.2")), tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    try:
        server = ThreadingHTTPServer(("127.0.0.2", 0), _Hello)
    except OSError:  # pragma: no cover - systems where only 127.0.0.1 is configured (macOS)
        pytest.skip("127.0.0.2 is not a local address here")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"https://127.0.0.2:{server.server_address[1]}/"
    try:
        with (
            httpx.Client(verify=_client_context(tls_files.ca_cert), trust_env=False) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get(url)
        with requests.Session() as session:
            session.trust_env = False
            with pytest.raises(requests.exceptions.SSLError):
                session.get(url, verify=str(tls_files.ca_cert), timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_trust_instructions_say_which_names_the_ca_can_vouch_for(tls_files: TLSFiles) -> None:
    assert "only for localhost, 127.0.0.1, ::1" in trust_instructions(tls_files)


def test_orphan_ca_key_without_certificate_is_replaced(tmp_path: Path) -> None:
    """A crash between writing the CA key and its certificate: nobody can trust that CA yet."""
    files = ensure_local_tls(tmp_path)
    assert files.ca_cert is not None
    files.ca_cert.unlink()

    ensure_local_tls(tmp_path)

    leaf, ca = _chain(files.cert)
    leaf.verify_directly_issued_by(ca)
    assert ca.public_bytes(serialization.Encoding.PEM) == files.ca_cert.read_bytes()


def test_loose_key_permissions_are_tightened(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    files.key.chmod(0o644)
    ensure_local_tls(tmp_path)
    assert _mode(files.key) == 0o600


def test_hostnames_are_normalised(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path, ["LocalHost", "[::1]", "api.example.test.", "*.svc.test", "::1"])
    leaf, _ = _chain(files.cert)
    assert _sans(leaf) == (["localhost", "api.example.test", "*.svc.test"], ["::1"])


@pytest.mark.parametrize("bad", ["", "bad host", "-x.test", "a..b", "x" * 64 + ".test"])
def test_bad_hostnames_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigurationError, match="TLS host name"):
        ensure_local_tls(tmp_path, ["localhost", bad])


def test_no_hostnames_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        ensure_local_tls(tmp_path, [])


def test_concurrent_first_calls_agree_on_one_ca(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: ensure_local_tls(tmp_path), range(6)))
    assert all(files == results[0] for files in results)
    leaf, ca = _chain(results[0].cert)
    leaf.verify_directly_issued_by(ca)
    assert results[0].ca_cert is not None
    assert ca.public_bytes(serialization.Encoding.PEM) == results[0].ca_cert.read_bytes()


# --------------------------------------------------------------------------- real TLS


def test_python_ssl_accepts_the_chain(tls_files: TLSFiles) -> None:
    assert tls_files.ca_cert is not None
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tls_files.cert, tls_files.key)  # cert and key belong together
    _client_context(tls_files.ca_cert)  # the CA file loads as a trust anchor


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_verifies_the_chain(tls_files: TLSFiles) -> None:
    assert tls_files.ca_cert is not None
    leaf_only = tls_files.cert.with_name("leaf-only.pem")
    leaf_only.write_bytes(_chain(tls_files.cert)[0].public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            tls_files.ca_cert,
            leaf_only,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_httpx_handshake_with_the_local_ca(tls_files: TLSFiles, https_port: int, host: str) -> None:
    assert tls_files.ca_cert is not None
    with httpx.Client(verify=_client_context(tls_files.ca_cert), trust_env=False) as client:
        response = client.get(f"https://{host}:{https_port}/")
    assert response.status_code == 200
    assert response.text == "hello over tls"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_requests_handshake_with_the_local_ca(tls_files: TLSFiles, https_port: int, host: str) -> None:
    assert tls_files.ca_cert is not None
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(f"https://{host}:{https_port}/", verify=str(tls_files.ca_cert), timeout=10)
    assert response.status_code == 200
    assert response.text == "hello over tls"


def test_clients_trust_it_through_the_printed_variables(
    tls_files: TLSFiles, https_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What trust_instructions tells users works; the machine's own CA variables are overridden."""
    assert tls_files.ca_cert is not None
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca_cert))
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_cert))
    url = f"https://localhost:{https_port}/"

    assert requests.get(url, timeout=10).text == "hello over tls"
    with httpx.Client() as client:
        assert client.get(url).text == "hello over tls"


def test_system_trust_store_alone_refuses_the_server(tls_files: TLSFiles, https_port: int) -> None:
    with (
        httpx.Client(verify=ssl.create_default_context(), trust_env=False) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://127.0.0.1:{https_port}/")


def test_hostname_outside_the_certificate_is_refused(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path, ["only.example.test"])
    assert files.ca_cert is not None
    leaf, _ = _chain(files.cert)
    # Re-issued certificates keep earlier names, so a fresh directory holds only this one.
    assert _sans(leaf) == (["only.example.test"], [])
    context = _client_context(files.ca_cert)
    _handshake(files, context, "only.example.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, context, "localhost")


def _handshake(files: TLSFiles, client_context: ssl.SSLContext, server_hostname: str) -> None:
    """One handshake over a socket pair: no network, the hostname check included."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.cert, files.key)
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(right, server_side=True):
                pass
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_context.wrap_socket(left, server_hostname=server_hostname):
            pass
    finally:
        left.close()
        thread.join(timeout=5)
        right.close()


def test_socketpair_handshake_checks_ip_and_dns_names(tls_files: TLSFiles) -> None:
    assert tls_files.ca_cert is not None
    context = _client_context(tls_files.ca_cert)
    for name in ("localhost", "127.0.0.1", "::1"):
        _handshake(tls_files, context, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_files, context, "example.com")


# --------------------------------------------------------------------------- user certificates


def test_user_tls_accepts_a_matching_pair(tls_files: TLSFiles) -> None:
    assert user_tls(tls_files.cert, tls_files.key) == TLSFiles(
        ca_cert=None, cert=tls_files.cert, key=tls_files.key
    )


def test_user_tls_names_missing_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "nope.pem", tmp_path / "nope-key.pem"
    with pytest.raises(ConfigurationError) as caught:
        user_tls(cert, key)
    assert caught.value.problems == [
        f"TLS certificate {cert} does not exist",
        f"TLS private key {key} does not exist",
    ]


def test_user_tls_names_a_directory(tls_files: TLSFiles, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not a file"):
        user_tls(tmp_path, tls_files.key)


def test_user_tls_names_unloadable_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("hello")
    key.write_bytes(b"\x00\x01")
    with pytest.raises(ConfigurationError) as caught:
        user_tls(cert, key)
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(f"TLS certificate {cert}: not a PEM certificate")
    assert problems[1].startswith(f"TLS private key {key}: not a PEM private key")


def test_user_tls_refuses_an_encrypted_key(tls_files: TLSFiles, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(tls_files.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(ConfigurationError, match=r"encrypted\.pem: encrypted with a password"):
        user_tls(tls_files.cert, encrypted)


def test_user_tls_refuses_a_key_of_another_certificate(tls_files: TLSFiles) -> None:
    assert tls_files.ca_cert is not None
    other_key = tls_files.ca_cert.with_name("ca-key.pem")
    with pytest.raises(ConfigurationError, match="does not match the certificate"):
        user_tls(tls_files.cert, other_key)


# --------------------------------------------------------------------------- instructions


def test_trust_instructions_for_the_local_ca(tls_files: TLSFiles) -> None:
    text = trust_instructions(tls_files)
    ca = str(tls_files.ca_cert)
    lines = text.splitlines()
    assert any(line.strip().startswith(f"export REQUESTS_CA_BUNDLE={ca}") for line in lines)
    assert any(line.strip().startswith(f"export SSL_CERT_FILE={ca}") for line in lines)
    assert any(line.strip().startswith(f"export NODE_EXTRA_CA_CERTS={ca}") for line in lines)
    assert "SSL_CERT_FILE" in next(line for line in lines if "REQUESTS_CA_BUNDLE" in line)
    assert len(lines) <= 6


def test_trust_instructions_quote_paths_with_spaces(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "my data")
    assert f"export NODE_EXTRA_CA_CERTS='{files.ca_cert}'" in trust_instructions(files)


def test_trust_instructions_for_user_certificates(tls_files: TLSFiles) -> None:
    text = trust_instructions(user_tls(tls_files.cert, tls_files.key))
    assert str(tls_files.cert) in text
    assert "export" not in text
