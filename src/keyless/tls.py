"""Local HTTPS for the authority: a private CA kept on disk and a server certificate it signs.

Every Microsoft client library refuses ``http://`` authorities, so keyless serves HTTPS by default.
On first start :func:`ensure_local_tls` creates, under ``<data_dir>/tls/``::

    ca.pem           the local CA certificate: the file clients are told to trust
    ca-key.pem       its private key (0600)
    server.pem       the server certificate followed by the CA (full chain)
    server-key.pem   the server's private key (0600)

Later starts reuse them. Only the server certificate is re-issued (same CA, same key) when a requested
host name is missing from it or it expires within 30 days. The CA is never replaced once it exists:
clients have been told to trust it. :func:`user_tls` checks certificate files a user supplies instead,
and :func:`trust_instructions` is the text printed at start telling users how to trust the CA.

Trusting the CA must not mean trusting it for every site, so it is limited three ways:

* **Name constraints**: the CA certificate permits only the host names and IP addresses the server
  certificate carries (``localhost``, ``127.0.0.1``, ``::1`` and any configured host). Clients
  (OpenSSL, so Python, requests, httpx, Node; Go, .NET, browsers) refuse any certificate it signs
  for another name, so even its stolen key cannot impersonate ``login.microsoftonline.com``. A new
  host name re-issues the CA certificate (same key, same subject) with the wider list; a client
  that copied ``ca.pem`` into a system store must copy it again. CAs made by older versions carry
  no constraints: delete ``<data_dir>/tls`` to replace one.
* **Validity**: two years (``CA_VALIDITY``), not ten.
* **Key use**: the CA private key is read only when a server certificate must be issued (the
  first start, a new host name, a renewal within 30 days of expiry); a start that reuses the
  server certificate never reads it, so the serving process holds only the server key. The key
  stays on disk (0600) for those moments; an operator may move ``ca-key.pem`` elsewhere and put it
  back only when keyless asks for it (its absence is then reported by name). The trade-off: the
  CA key sits next to the data, readable by the account that runs keyless; the constraints bound
  what it can sign.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import secrets
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.errors import ConfigurationError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["TLSFiles", "ca_permitted_names", "ensure_local_tls", "trust_instructions", "user_tls"]

log = logging.getLogger("keyless.tls")

DEFAULT_HOSTNAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

CA_VALIDITY = dt.timedelta(days=730)
SERVER_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates start a little in the past so that a client whose clock lags still accepts them.
BACKDATE = dt.timedelta(minutes=5)

_CA_CERT = "ca.pem"
_CA_KEY = "ca-key.pem"
_SERVER_CERT = "server.pem"
_SERVER_KEY = "server-key.pem"
_LOCK = ".lock"

_HostName: TypeAlias = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class TLSFiles:
    """The files a TLS server needs; ``ca_cert`` is None when the user supplied the certificate."""

    ca_cert: Path | None
    cert: Path
    key: Path


# --------------------------------------------------------------------------- public API


def ensure_local_tls(
    data_dir: Path,
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    *,
    now: dt.datetime | None = None,
) -> TLSFiles:
    """Create (first call) or reuse the local CA and server certificate under ``data_dir/tls/``.

    ``hostnames`` are DNS names or IP addresses the server certificate must cover. The server
    certificate is re-issued, by the same CA and with the same key, when one of them is missing or it
    expires within 30 days; the names it already covered are kept. Safe to call from several
    processes at once (an exclusive lock serialises creation).
    """
    moment = _utc(now)
    wanted = _parse_hostnames(hostnames)
    tls_dir = Path(data_dir) / "tls"
    try:
        tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(tls_dir, 0o700)
    except OSError as exc:
        raise ConfigurationError(
            f"the directory {tls_dir} cannot be created: {exc.strerror or exc}"
        ) from None
    files = TLSFiles(ca_cert=tls_dir / _CA_CERT, cert=tls_dir / _SERVER_CERT, key=tls_dir / _SERVER_KEY)
    with _locked(tls_dir / _LOCK):
        ca_cert, ca_key = _load_or_create_ca(tls_dir, moment, wanted)
        server_key = _load_or_create_server_key(tls_dir)
        current = _load_server_cert(files.cert)
        if current is None or _needs_reissue(current, ca_cert, server_key, wanted, moment):
            names = _merge_names(wanted, _san_names(current) if current is not None else [])
            if ca_key is None:  # only now: a start that reuses the server certificate never reads it
                ca_key = _load_ca_key(tls_dir, ca_cert)
            if not _permits(ca_cert, names):
                ca_cert = _widen_ca(tls_dir, ca_cert, ca_key, names, moment)
            leaf = _issue_server_cert(ca_cert, ca_key, server_key, names, moment)
            del ca_key
            chain = leaf.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
                serialization.Encoding.PEM
            )
            _write_atomic(files.cert, chain, 0o644)
    return files


def ca_permitted_names(ca_cert: Path) -> list[str] | None:
    """The names a local CA may vouch for (its permitted subtrees); ``None`` when unconstrained."""
    constraints = _name_constraints(x509.load_pem_x509_certificate(ca_cert.read_bytes()))
    if constraints is None or not constraints.permitted_subtrees:
        return None
    shown: list[str] = []
    for entry in constraints.permitted_subtrees:
        if isinstance(entry, x509.IPAddress) and isinstance(
            entry.value, ipaddress.IPv4Network | ipaddress.IPv6Network
        ):
            network = entry.value
            shown.append(str(network.network_address) if network.num_addresses == 1 else str(network))
        else:
            shown.append(str(entry.value))
    return shown


def user_tls(cert: Path, key: Path) -> TLSFiles:
    """Check a user-supplied PEM certificate (chain) and unencrypted PEM private key, and return them.

    Raises :class:`ConfigurationError` naming each file that is missing or cannot be loaded, or when
    the key does not belong to the first certificate.
    """
    cert, key = Path(cert), Path(key)
    problems: list[str] = []
    leaf: x509.Certificate | None = None
    private_key: PrivateKeyTypes | None = None

    cert_data = _read_file(cert, "TLS certificate", problems)
    if cert_data is not None:
        try:
            leaf = x509.load_pem_x509_certificates(cert_data)[0]
        except ValueError as exc:
            problems.append(f"TLS certificate {cert}: not a PEM certificate ({exc})")

    key_data = _read_file(key, "TLS private key", problems)
    if key_data is not None:
        try:
            private_key = serialization.load_pem_private_key(key_data, password=None)
        except TypeError:
            problems.append(f"TLS private key {key}: encrypted with a password; keyless needs it unencrypted")
        except (ValueError, UnsupportedAlgorithm) as exc:
            problems.append(f"TLS private key {key}: not a PEM private key ({exc})")

    if leaf is not None and private_key is not None and not _same_public_key(leaf, private_key):
        problems.append(f"TLS private key {key} does not match the certificate in {cert}")
    if problems:
        raise ConfigurationError(problems)
    return TLSFiles(ca_cert=None, cert=cert, key=key)


def trust_instructions(files: TLSFiles) -> str:
    """The lines printed at start telling a user how to make clients trust keyless's local CA."""
    if files.ca_cert is None:
        return (
            f"keyless serves HTTPS with your certificate {files.cert}.\n"
            "Clients must trust the CA that issued it."
        )
    ca = shlex.quote(str(files.ca_cert))
    permitted = ca_permitted_names(files.ca_cert)
    scope = f"only for {', '.join(permitted)}" if permitted else "for any name (no name constraints)"
    return "\n".join(
        [
            f"keyless serves HTTPS with a local CA: {files.ca_cert}",
            f"It can vouch {scope}.",
            "To trust it in a shell that runs clients (these replace the default CA bundle there):",
            f"  export REQUESTS_CA_BUNDLE={ca}   # MSAL, azure-identity: requests ignores SSL_CERT_FILE",
            f"  export SSL_CERT_FILE={ca}        # httpx",
            f"  export NODE_EXTRA_CA_CERTS={ca}  # Node: @azure/msal-node, @azure/identity",
        ]
    )


# --------------------------------------------------------------------------- the CA


def _load_or_create_ca(
    tls_dir: Path, now: dt.datetime, names: Sequence[_HostName]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | None]:
    """The CA certificate, plus its key when this call created it (else ``None``: not read)."""
    cert_path, key_path = tls_dir / _CA_CERT, tls_dir / _CA_KEY
    if not cert_path.exists():
        # No CA certificate yet, so nobody trusts one: create it (a key left alone by a crash between
        # the two writes below is replaced).
        new_key = ec.generate_private_key(ec.SECP256R1())
        new_cert = _issue_ca_cert(new_key, now, names)
        _write_atomic(key_path, _private_pem(new_key), 0o600)
        _write_atomic(cert_path, new_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return new_cert, new_key
    # The CA exists (clients may trust it): load it, never replace it.
    problems: list[str] = []
    cert = _load_cert_file(cert_path, "local CA certificate", problems)
    if cert is not None and cert.not_valid_after_utc <= now:
        problems.append(
            f"local CA certificate {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
            f"delete {tls_dir} to create a new CA, then trust the new one"
        )
    if problems or cert is None:
        raise ConfigurationError(problems)
    _tighten_mode(key_path)
    return cert, None


def _load_ca_key(tls_dir: Path, cert: x509.Certificate) -> ec.EllipticCurvePrivateKey:
    """Read the CA private key, needed only to issue a certificate."""
    key_path = tls_dir / _CA_KEY
    problems: list[str] = []
    key = _load_ec_key_file(key_path, "local CA private key (needed to issue a server certificate)", problems)
    if key is not None and not _same_public_key(cert, key):
        problems.append(f"local CA private key {key_path} does not match {tls_dir / _CA_CERT}")
    if problems or key is None:
        raise ConfigurationError(problems)
    _tighten_mode(key_path)
    return key


def _name_constraints(cert: x509.Certificate) -> x509.NameConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None


def _subtree(name: _HostName) -> x509.GeneralName:
    """The permitted subtree for one server name: the DNS name (a wildcard's parent), or one address."""
    if isinstance(name, x509.DNSName):
        return x509.DNSName(name.value.removeprefix("*."))
    address = name.value
    assert isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
    return x509.IPAddress(ipaddress.ip_network(address))


def _subtrees(names: Sequence[_HostName]) -> list[x509.GeneralName]:
    subtrees: list[x509.GeneralName] = []
    for name in names:
        subtree = _subtree(name)
        if subtree not in subtrees:
            subtrees.append(subtree)
    return subtrees


def _permits(ca: x509.Certificate, names: Sequence[_HostName]) -> bool:
    """True when ``ca``'s name constraints (if any) allow every one of ``names``."""
    constraints = _name_constraints(ca)
    if constraints is None or constraints.permitted_subtrees is None:
        return True
    permitted = constraints.permitted_subtrees
    return all(_subtree(name) in permitted for name in names)


def _widen_ca(
    tls_dir: Path,
    ca: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    names: Sequence[_HostName],
    now: dt.datetime,
) -> x509.Certificate:
    """Re-issue the CA certificate (same key, subject and expiry) permitting ``names`` too."""
    constraints = _name_constraints(ca)
    kept = (
        [n for n in (constraints.permitted_subtrees or []) if isinstance(n, x509.DNSName | x509.IPAddress)]
        if constraints
        else []
    )
    subtrees = _subtrees(names)
    subtrees += [n for n in kept if n not in subtrees]
    widened = _ca_builder(ca.subject, key, ca.not_valid_before_utc, ca.not_valid_after_utc, subtrees).sign(
        key, hashes.SHA256()
    )
    _write_atomic(tls_dir / _CA_CERT, widened.public_bytes(serialization.Encoding.PEM), 0o644)
    log.warning(
        "the local CA certificate %s now also permits %s; copy it again wherever it was installed",
        tls_dir / _CA_CERT,
        ", ".join(str(n.value) for n in names),
    )
    return widened


def _issue_ca_cert(
    key: ec.EllipticCurvePrivateKey, now: dt.datetime, names: Sequence[_HostName]
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"keyless local CA {secrets.token_hex(4)}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyless"),
        ]
    )
    builder = _ca_builder(name, key, now - BACKDATE, now + CA_VALIDITY, _subtrees(names))
    return builder.sign(key, hashes.SHA256())


def _ca_builder(
    name: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    permitted: Sequence[x509.GeneralName],
) -> x509.CertificateBuilder:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # RFC 5280 4.2.1.10: critical, so that a client that cannot enforce it refuses the CA.
        .add_extension(
            x509.NameConstraints(permitted_subtrees=list(permitted), excluded_subtrees=None), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


# --------------------------------------------------------------------------- the server certificate


def _load_or_create_server_key(tls_dir: Path) -> ec.EllipticCurvePrivateKey:
    path = tls_dir / _SERVER_KEY
    if path.exists():
        problems: list[str] = []
        key = _load_ec_key_file(path, "server private key", problems)
        if key is not None:
            _tighten_mode(path)
            return key
        # An unreadable server key is ours to replace: only the CA must never change.
    key = ec.generate_private_key(ec.SECP256R1())
    _write_atomic(path, _private_pem(key), 0o600)
    return key


def _load_server_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError):
        return None


def _needs_reissue(
    cert: x509.Certificate,
    ca: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    wanted: Sequence[_HostName],
    now: dt.datetime,
) -> bool:
    """True when the server certificate cannot serve ``wanted`` for the next 30 days."""
    if not _same_public_key(cert, key) or not _issued_by(cert, ca):
        return True
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc - now <= RENEW_BEFORE:
        return True
    covered = set(_san_names(cert))
    return any(name not in covered for name in wanted)


def _issue_server_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    names: Sequence[_HostName],
    now: dt.datetime,
) -> x509.Certificate:
    public = key.public_key()
    not_after = min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc)
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyless local server")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(authority_key_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )


# --------------------------------------------------------------------------- host names


def _parse_hostnames(hostnames: Sequence[str]) -> list[_HostName]:
    if isinstance(hostnames, str):
        hostnames = [hostnames]
    names: list[_HostName] = []
    problems: list[str] = []
    for raw in hostnames:
        try:
            name = _parse_hostname(raw)
        except ValueError as exc:
            problems.append(f"TLS host name {raw!r}: {exc}")
            continue
        if name not in names:
            names.append(name)
    if not names and not problems:
        problems.append("TLS host names: at least one DNS name or IP address is needed")
    if problems:
        raise ConfigurationError(problems)
    return names


def _parse_hostname(raw: str) -> _HostName:
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    text = text.rstrip(".").lower()
    if not text:
        raise ValueError("empty")
    if not text.isascii():
        text = text.encode("idna").decode("ascii")
    labels = text.split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0 and len(labels) > 1:
            continue
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            raise ValueError("not a valid DNS name or IP address")
        if not all(c.isalnum() or c in "-_" for c in label):
            raise ValueError("not a valid DNS name or IP address")
    return x509.DNSName(text)


def _san_names(cert: x509.Certificate) -> list[_HostName]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[_HostName] = []
    for entry in san:
        if isinstance(entry, x509.DNSName):
            names.append(x509.DNSName(entry.value.lower()))
        elif isinstance(entry, x509.IPAddress):
            names.append(entry)
    return names


def _merge_names(first: Sequence[_HostName], then: Sequence[_HostName]) -> list[_HostName]:
    merged: list[_HostName] = []
    for name in [*first, *then]:
        if name not in merged:
            merged.append(name)
    return merged


# --------------------------------------------------------------------------- files and keys


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a fresh temporary file created with ``mode``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits we want (0644 certificates)
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tighten_mode(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX flock) held for the ``with`` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read_file(path: Path, what: str, problems: list[str]) -> bytes | None:
    if not path.exists():
        problems.append(f"{what} {path} does not exist")
        return None
    if not path.is_file():
        problems.append(f"{what} {path} is not a file")
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        problems.append(f"{what} {path} cannot be read: {exc.strerror or exc}")
        return None


def _load_cert_file(path: Path, what: str, problems: list[str]) -> x509.Certificate | None:
    data = _read_file(path, what, problems)
    if data is None:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        problems.append(f"{what} {path}: not a PEM certificate ({exc})")
        return None


def _load_ec_key_file(path: Path, what: str, problems: list[str]) -> ec.EllipticCurvePrivateKey | None:
    data = _read_file(path, what, problems)
    if data is None:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        problems.append(f"{what} {path}: not an unencrypted PEM private key ({exc})")
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        problems.append(f"{what} {path}: expected an EC key, found {type(key).__name__}")
        return None
    return key


def _same_public_key(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    try:
        return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    except (ValueError, TypeError):
        return False


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)
