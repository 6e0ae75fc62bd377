"""``styku-crypto tls``: configuration generator and certificate checks.

Exit codes: 0 compliant, 1 policy violation (an ERROR finding), 2 usage error,
3 the host could not be reached.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

__all__ = ["register"]

EXIT_UNREACHABLE = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tls`` command group."""
    parser = subparsers.add_parser(
        "tls", help="TLS: config generator, check-cert, tls audit scanner"
    )
    tls_sub = parser.add_subparsers(dest="tls_command", metavar="TLS_COMMAND")

    config = tls_sub.add_parser("config", help="print a server TLS configuration for a policy")
    config.add_argument("--policy", default="intermediate", help="profile name or policy file")
    config.add_argument(
        "--server",
        required=True,
        choices=["nginx", "apache", "haproxy", "python"],
        help="server type",
    )
    config.set_defaults(handler=_config)

    check = tls_sub.add_parser("check-cert", help="check a certificate chain against a policy")
    check.add_argument("target", help="PEM file, or HOST:PORT to fetch the chain from")
    check.add_argument("--hostname", help="name clients use (default: HOST, or the leaf's SAN)")
    check.add_argument("--policy", default="intermediate", help="profile name or policy file")
    check.add_argument("--trust", help="PEM bundle of trust anchors (default: certifi)")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.set_defaults(handler=_check_cert)

    if importlib.util.find_spec("styku_crypto._cli._tls_audit") is not None:
        from styku_crypto._cli import _tls_audit

        _tls_audit.register(tls_sub)

    def _help(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(handler=_help)


def _config(args: argparse.Namespace) -> int:
    from styku_crypto.tls import load_policy
    from styku_crypto.tls._config_gen import generate_config

    print(generate_config(load_policy(args.policy), args.server), end="")
    return 0


def _fetch_chain(target: str, timeout: float = 10.0) -> tuple[list[object], str]:
    import socket
    import struct

    from cryptography import x509
    from OpenSSL import SSL

    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(target)
    host = host.strip("[]")
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE, None)  # fetch only; the chain is validated by check_certificate
    sock = socket.create_connection((host, int(port_text)), timeout=timeout)
    try:
        # pyOpenSSL needs a blocking socket: bound it with kernel timeouts.
        sock.settimeout(None)
        timeval = struct.pack("ll", int(timeout), 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        conn = SSL.Connection(ctx, sock)
        try:
            import ipaddress

            ipaddress.ip_address(host)
        except ValueError:
            conn.set_tlsext_host_name(host.encode("idna"))
        conn.set_connect_state()
        conn.do_handshake()
        chain = [c.to_cryptography() for c in (conn.get_peer_cert_chain() or [])]
        conn.shutdown()
    finally:
        sock.close()
    certs: list[x509.Certificate] = list(chain)
    return list(certs), host


def _check_cert(args: argparse.Namespace) -> int:
    import os

    from styku_crypto._cli import usage_error
    from styku_crypto.tls import check_certificate, load_policy

    policy = load_policy(args.policy)
    hostname = args.hostname
    if os.path.exists(args.target):
        chain: object = args.target
    else:
        try:
            chain, host = _fetch_chain(args.target)
        except ValueError:
            raise usage_error(f"{args.target!r} is neither a file nor HOST:PORT") from None
        except OSError as exc:
            print(f"styku-crypto: cannot reach {args.target}: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        except Exception as exc:  # pyOpenSSL raises its own SSL.Error tree
            print(f"styku-crypto: TLS handshake with {args.target} failed: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        hostname = hostname or host
        if not chain:
            print(f"styku-crypto: {args.target} sent no certificate", file=sys.stderr)
            return 1
    report = check_certificate(chain, hostname=hostname, policy=policy, trust=args.trust)  # type: ignore[arg-type]
    print(report.to_json() if args.format == "json" else report.to_text())
    return 0 if report.ok else 1
