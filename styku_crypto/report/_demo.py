"""``styku-crypto report --demo``: a throw-away environment to report on.

Everything lives in a private temporary directory deleted afterwards, and the
two TLS servers listen on 127.0.0.1 ports picked by the kernel and stop when the
demo ends: a key store under two local roots with three tenants, backups at two
destinations, a drill of the newest backup, a password database sample, an
incident log with a closed and an open incident, one TLS endpoint that
complies with Mozilla intermediate and one that does not (TLS 1.0, weak
suites, a certificate expiring in 12 days; its certificate finding is waived
for the demo). The root keys, passwords and generated private keys never leave
the temporary directory and never appear in the report.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import socket
import sqlite3
import ssl
import tempfile
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from styku_crypto.incidents import IncidentLog, NotificationPolicy
from styku_crypto.keys import KeyStore, LocalRootKey, backup, drill
from styku_crypto.passwords import PasswordHasher, profiles

__all__ = ["demo", "make_certificates", "server_context", "tls_server"]

_INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates(directory: Path) -> tuple[Path, tuple[Path, Path], tuple[Path, Path]]:
    """A demo CA, a good ECDSA leaf (90 days) and a weak RSA leaf (expires in 12 days)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("styku report demo CA"))
        .issuer_name(_name("styku report demo CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "demo-ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(
        stem: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, days: int
    ) -> tuple[Path, Path]:
        ec_key = isinstance(key, ec.EllipticCurvePrivateKey)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.KeyUsage(True, False, not ec_key, False, False, False, False, False, False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + ca.public_bytes(serialization.Encoding.PEM)
        )
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        return cert_path, key_path

    good = leaf("good", ec.generate_private_key(ec.SECP256R1()), 90)
    weak = leaf("weak", rsa.generate_private_key(public_exponent=65537, key_size=2048), 12)
    return ca_path, good, weak


def server_context(cert: tuple[Path, Path], *, compliant: bool) -> ssl.SSLContext:
    """A stdlib server context: Mozilla intermediate, or deliberately weak."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if compliant:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(_INTERMEDIATE)
            ctx.set_ecdh_curve("prime256v1")
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


@contextlib.contextmanager
def tls_server(ctx: ssl.SSLContext, *, hsts: str | None) -> Iterator[int]:
    """Serve HTTPS on 127.0.0.1 (a free port, yielded) until the block ends.

    Every request gets ``200 ok`` and, when *hsts* is given, that
    Strict-Transport-Security header. Probes that break off are ignored.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    stopping = threading.Event()

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError), conn:
            conn.settimeout(5)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 16384:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                if hsts:
                    head += f"Strict-Transport-Security: {hsts}\r\n"
                tls.sendall((head + "Connection: close\r\n\r\nok\n").encode())

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, name="report-demo-tls", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or list of strings is valid TOML


def build_store(directory: Path) -> tuple[str, list[str], str]:
    """Key store, backups, drill, passwords and incidents; returns the [keys] and [backups] TOML."""
    roots = [LocalRootKey(directory / "root-a.key"), LocalRootKey(directory / "root-b.key")]
    specs = [f"local:{directory / 'root-a.key'}", f"local:{directory / 'root-b.key'}"]
    store_path = directory / "keys.db"
    dests = [directory / "backup-disk", directory / "backup-offsite"]
    now = datetime.now(UTC)
    with KeyStore.open(store_path, root=roots) as store:
        for tenant in ("acme", "globex", "initech"):
            store.create_tenant(tenant)
        store.rotate("acme")
        log = IncidentLog.open(
            directory / "incidents.jsonl", store=store, policy=NotificationPolicy()
        )
        inc = log.open_incident(
            type="key-compromise",
            tenants=["globex"],
            detected_at=now - timedelta(days=3),
            actor="demo",
        )
        log.update(
            inc.id,
            status="confirmed",
            at=now - timedelta(days=3) + timedelta(hours=2),
            actor="demo",
        )
        log.notify(
            inc.id, tenant="globex", channel="email", reference="demo", at=now - timedelta(days=2)
        )
        log.update(inc.id, status="contained", actor="demo")
        log.update(inc.id, status="resolved", actor="demo")
        log.close(inc.id, disposition="demo: keys rotated, customer notified", actor="demo")
        log.open_incident(
            type="credential-stuffing", detected_at=now - timedelta(hours=5), actor="demo"
        )
        for d in dests:
            d.mkdir()
        backup(store, dests, actor="demo")
        report = drill(dests[0], root=roots)
        (directory / "drills").mkdir()
        (directory / "drills" / "drill.json").write_text(json.dumps(report.to_json()))
    # A password table: two hashes on the current profile, one on an older, cheaper one.
    db = sqlite3.connect(directory / "app.db")
    with contextlib.closing(db):
        db.execute("CREATE TABLE users (name TEXT, password_hash TEXT)")
        current = PasswordHasher(profile=profiles.RFC_9106_LOW_MEMORY)
        old = PasswordHasher(profile=profiles.OWASP_M7168_T5)
        rows = [("ada", current), ("bob", current), ("cy", old)]
        db.executemany(
            "INSERT INTO users VALUES (?, ?)",
            [(n, h.hash(secrets.token_urlsafe(16))) for n, h in rows],
        )
        db.commit()
    keys = f"[keys]\nstore = {_toml(str(store_path))}\nroots = {_toml(specs)}\n"
    backups = f"[backups]\ndestinations = {_toml([str(d) for d in dests])}\nmax_age_hours = 26\n"
    return keys, specs, backups


@contextlib.contextmanager
def demo() -> Iterator[Path]:
    """Build the whole demo environment; yields the path of its report.toml."""
    with tempfile.TemporaryDirectory(prefix="styku-report-demo-") as tmp:
        directory = Path(tmp)
        ca, good, weak = make_certificates(directory)
        keys, _specs, backups = build_store(directory)
        hsts = "max-age=63072000; includeSubDomains"
        with (
            tls_server(server_context(good, compliant=True), hsts=hsts) as good_port,
            tls_server(server_context(weak, compliant=False), hsts=None) as weak_port,
        ):
            expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
            config = directory / "report.toml"
            config.write_text(
                "[report]\n"  # noqa: S608 - TOML holding a fixed query, not SQL built from input
                'title = "Styku demo: DPA Annex 2 evidence"\n'
                "timeout = 60\n\n"
                f"{keys}\n[rotation]\nmax_age_days = 365\n\n"
                "[tls]\n"
                f'endpoints = ["127.0.0.1:{good_port}", "127.0.0.1:{weak_port}"]\n'
                f"ca_file = {_toml(str(ca))}\n"
                "cert_horizon_days = 30\n\n"
                f"{backups}\n"
                f"[drill]\nreports = {_toml([str(directory / 'drills')])}\nmax_age_days = 92\n\n"
                "[passwords]\n"
                'profile = "RFC_9106_LOW_MEMORY"\n'
                f"database = {_toml(str(directory / 'app.db'))}\n"
                'sample_query = "SELECT password_hash FROM users"\n'
                "max_upgrade_share = 0.5\n\n"
                f"[incidents]\nlog = {_toml(str(directory / 'incidents.jsonl'))}\n\n"
                "[[waivers]]\n"
                'control = "TX-CERT"\n'
                f'subject = "127.0.0.1:{weak_port}"\n'
                'reason = "legacy partner endpoint, decommissioned with the demo"\n'
                f"expires = {expires}\n"
            )
            yield config
