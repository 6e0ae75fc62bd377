"""The audit test bed: real TLS servers on 127.0.0.1 with known configurations.

Every server here is real: Python's ``ssl`` (OpenSSL 3.0) at whatever security
level the configuration needs, and ``openssl s_server`` for OCSP stapling.
Hostile servers speak raw TCP. Everything binds to 127.0.0.1 on an ephemeral
port and is stopped at teardown.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# OpenSSL 3.0 option bits Python's ssl module has no names for.
OP_NO_EXTENDED_MASTER_SECRET = 1 << 0
OP_ALLOW_CLIENT_RENEGOTIATION = 1 << 8

MOZILLA_INTERMEDIATE_OPENSSL = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
LONG_HSTS = "max-age=63072000; includeSubDomains"
SHORT_HSTS = "max-age=300"


@dataclass
class Certs:
    """Paths of every certificate and key the bed uses."""

    directory: Path
    ca: Path
    good: tuple[Path, Path]
    weak: tuple[Path, Path]
    badname: tuple[Path, Path]
    ocsp_response: Path
    dh1024: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certs(directory: Path) -> Certs:
    """Create the CA, the leaf certificates, an OCSP response and 1024-bit DH parameters."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("styku audit test CA"))
        .issuer_name(_name("styku audit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
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
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(stem: str, names: list[str], days_before: int, days_after: float) -> tuple[Path, Path]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=days_before))
            .not_valid_after(now + dt.timedelta(days=days_after))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        _write_key(key_path, key)
        return cert_path, key_path

    good = leaf("good", ["localhost", "127.0.0.1"], 10, 80)
    badname = leaf("badname", ["other.example"], 7, 3)

    # OCSP response for the good certificate, signed by the CA (stapled by s_server).
    good_cert = x509.load_pem_x509_certificate(good[0].read_bytes())
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=good_cert,
            issuer=ca_cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - dt.timedelta(hours=1),
            next_update=now + dt.timedelta(days=3),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca_cert)
        .sign(ca_key, hashes.SHA256())
    )
    ocsp_path = directory / "good.ocsp.der"
    ocsp_path.write_bytes(response.public_bytes(serialization.Encoding.DER))

    # The weak certificate: 1024-bit RSA, SHA-1, self-signed, expired. cryptography
    # refuses SHA-1 signatures, so the openssl CLI makes it.
    weak_dir = directory / "weakca"
    weak_dir.mkdir()
    (weak_dir / "ca.cnf").write_text(
        "[ca]\ndefault_ca=d\n[d]\ndir=.\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
        "policy=p\nunique_subject=no\n[p]\ncommonName=supplied\n"
    )
    (weak_dir / "index.txt").write_text("")
    (weak_dir / "serial").write_text("01\n")
    _run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "weak.key",
            "-subj",
            "/CN=weak.test",
            "-out",
            "weak.csr",
        ],
        weak_dir,
    )
    _run(
        [
            "openssl",
            "ca",
            "-batch",
            "-selfsign",
            "-keyfile",
            "weak.key",
            "-in",
            "weak.csr",
            "-out",
            "weak.pem",
            "-startdate",
            "20240101000000Z",
            "-enddate",
            "20240201000000Z",
            "-md",
            "sha1",
            "-notext",
            "-config",
            "ca.cnf",
        ],
        weak_dir,
    )
    dh = directory / "dh1024.pem"
    _run(["openssl", "dhparam", "-dsaparam", "-out", str(dh), "1024"], directory)
    return Certs(
        directory=directory,
        ca=ca_path,
        good=good,
        weak=(weak_dir / "weak.pem", weak_dir / "weak.key"),
        badname=badname,
        ocsp_response=ocsp_path,
        dh1024=dh,
    )


def _run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=60)


# ----------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A running server: where it listens and how to stop it."""

    name: str
    port: int
    stop: Callable[[], None]
    connections: list[int] = field(default_factory=lambda: [0, 0])  # [current, peak]

    @property
    def target(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _serve(name: str, handler: Callable[[socket.socket], None]) -> Server:
    """Accept connections in a thread and run *handler* on each in its own thread."""
    listener = _listener()
    stopping = threading.Event()
    threads: list[threading.Thread] = []
    server = Server(name=name, port=listener.getsockname()[1], stop=lambda: None)
    lock = threading.Lock()

    def tracked(conn: socket.socket) -> None:
        with lock:
            server.connections[0] += 1
            server.connections[1] = max(server.connections[1], server.connections[0])
        try:
            handler(conn)
        except Exception:
            pass
        finally:
            with lock:
                server.connections[0] -= 1
            with contextlib.suppress(OSError):
                conn.close()

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            t = threading.Thread(target=tracked, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=accept_loop, name=f"bed-{name}", daemon=True)
    acceptor.start()

    def stop() -> None:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(timeout=5)
        for t in threads:
            t.join(timeout=5)

    server.stop = stop
    return server


def https_server(name: str, ctx: ssl.SSLContext, hsts: str | None) -> Server:
    """A TLS server answering ``GET`` with 200 and, optionally, an HSTS header."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 16384:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                data += chunk
            headers = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            if hsts:
                headers += f"Strict-Transport-Security: {hsts}\r\n"
            tls.sendall((headers + "Connection: close\r\n\r\nok\n").encode())

    return _serve(name, handle)


def server_context(
    cert: tuple[Path, Path],
    *,
    minimum: ssl.TLSVersion,
    maximum: ssl.TLSVersion,
    ciphers: str | None = None,
    curve: str | None = None,
    server_preference: bool = True,
    extra_options: int = 0,
    dh: Path | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    """A stdlib server context with exactly the knobs the bed needs."""
    import warnings

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    if curve:
        ctx.set_ecdh_curve(curve)
    if dh:
        ctx.load_dh_params(str(dh))
    if not server_preference:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if extra_options:
        ctx.options |= extra_options  # type: ignore[assignment]
    if alpn:
        ctx.set_alpn_protocols(alpn)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def free_port() -> int:
    """A port that was free a moment ago (for tools that cannot report theirs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Linux: SIGTERM the child when the test process dies, so no s_server outlives it."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def s_server(name: str, args: list[str], cwd: Path) -> Server:
    """Start ``openssl s_server`` on an ephemeral port and wait until it accepts."""
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-quiet", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        else:
            proc.kill()
            proc.wait(5)
            continue

        def stop(proc: subprocess.Popen[bytes] = proc) -> None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

        return Server(name=name, port=port, stop=stop)
    raise RuntimeError(f"openssl s_server for {name} did not start")


# ----------------------------------------------------------------------------- hostile


def hostile_server(name: str, behaviour: str, hold: threading.Event) -> Server:
    """A TCP server that misbehaves: garbage, truncated, silent, reset, absurd, drip."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(10)
        if behaviour == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        with contextlib.suppress(OSError):
            conn.recv(65536)
        if behaviour == "garbage":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + os.urandom(200))
        elif behaviour == "truncated":
            conn.sendall(b"\x16\x03\x03\x00\x64\x02\x00\x00\x46\x03\x03" + os.urandom(10))
        elif behaviour == "absurd":
            conn.sendall(b"\x16\x03\x03\xff\xff" + os.urandom(100))
            hold.wait(30)
        elif behaviour == "silent":
            hold.wait(30)
        elif behaviour == "drip":
            for byte in b"\x16\x03\x03\x00\x64\x02\x00\x00\x46\x03\x03":
                if hold.wait(0.4):
                    return
                conn.sendall(bytes([byte]))
            hold.wait(30)

    return _serve(name, handle)


def start_bed(certs: Certs, hold: threading.Event, *, hostile: bool = True) -> list[Server]:
    """Start the five configured servers and, unless told not to, the hostile ones."""
    v = ssl.TLSVersion
    servers = [
        https_server(
            "tls13",
            server_context(certs.good, minimum=v.TLSv1_3, maximum=v.TLSv1_3),
            LONG_HSTS,
        ),
        https_server(
            "intermediate",
            server_context(
                certs.good,
                minimum=v.TLSv1_2,
                maximum=v.TLSv1_3,
                ciphers=MOZILLA_INTERMEDIATE_OPENSSL,
                curve="prime256v1",
                server_preference=False,
                alpn=["h2", "http/1.1"],
            ),
            LONG_HSTS,
        ),
        https_server(
            "weak",
            server_context(
                certs.weak,
                minimum=v.TLSv1,
                maximum=v.TLSv1_2,
                ciphers="ALL:eNULL:aNULL:@SECLEVEL=0",
                dh=certs.dh1024,
                extra_options=OP_NO_EXTENDED_MASTER_SECRET | OP_ALLOW_CLIENT_RENEGOTIATION,
            ),
            None,
        ),
        https_server(
            "badname",
            server_context(certs.badname, minimum=v.TLSv1_2, maximum=v.TLSv1_3),
            SHORT_HSTS,
        ),
        s_server(
            "stapled",
            [
                "-cert",
                str(certs.good[0]),
                "-key",
                str(certs.good[1]),
                "-status_file",
                str(certs.ocsp_response),
                "-cipher",
                MOZILLA_INTERMEDIATE_OPENSSL,
                "-ciphersuites",
                "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
                "-groups",
                "X25519:P-256",
                "-no_tls1",
                "-no_tls1_1",
                "-serverpref",
                "-www",
            ],
            certs.directory,
        ),
    ]
    if hostile:
        for behaviour in ("garbage", "truncated", "silent", "reset", "absurd", "drip"):
            servers.append(hostile_server(behaviour, behaviour, hold))
    return servers


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server on exit."""
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
