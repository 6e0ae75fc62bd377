"""Context construction details: facts, events, fallbacks, truststore, input errors."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from styku_crypto import tls
from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls import _stdlib_contexts, profiles

from ._loopback import connect, serve_once


def test_context_created_event_names_policy_and_groups(
    pki: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Building a context emits tls.context_created with the policy and the enforced groups."""
    with caplog.at_level(logging.INFO, logger="styku_crypto.tls"):
        tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    events = [r.styku_event for r in caplog.records if r.getMessage() == "tls.context_created"]  # type: ignore[attr-defined]
    assert events
    assert events[-1]["policy"] == "mozilla-6.0-intermediate"
    assert "X25519" in str(events[-1]["groups"])


def test_stdlib_context_reports_unavailable_pq_group(pki: object) -> None:
    """On OpenSSL < 3.5 the stdlib context leaves X25519MLKEM768 out and says so."""
    ctx = tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    facts = tls.context_facts(ctx)
    assert facts is not None
    if ssl.OPENSSL_VERSION_INFO < (3, 5):
        assert "X25519MLKEM768" in facts.groups_unavailable
        report = tls.check_context(ctx)
        assert "TLS-GROUP-003" in report.rule_ids()
        assert report.ok
    else:
        assert "X25519MLKEM768" in facts.groups


def test_pyopenssl_context_enforces_pq_group(pki: object) -> None:
    """pyOpenSSL's bundled OpenSSL sets the hybrid X25519MLKEM768 group first."""
    ctx = tls.pyopenssl_server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    facts = tls.context_facts(ctx)
    assert facts is not None
    assert facts.groups[0] == "X25519MLKEM768"


def test_fallback_without_native_binding_uses_single_group(
    pki: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a usable libssl binding the stdlib context falls back to one group and works."""
    monkeypatch.setattr(_stdlib_contexts, "native", lambda: None)
    server = tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    facts = tls.context_facts(server)
    assert facts is not None
    assert facts.groups == ("P-256",)
    assert "set_ecdh_curve" in facts.groups_method
    report = tls.check_context(server)
    assert report.ok, report.to_text()
    assert "TLS-GROUP-001" not in report.rule_ids()
    run = serve_once(server)
    result = connect(tls.client_context(cafile=pki.ca), run.port)  # type: ignore[attr-defined]
    run.join()
    assert result.reply == b"pong:ping"


def test_truststore_client_context_is_hardened() -> None:
    """use_truststore builds an OS-store context with the same policy settings."""
    import truststore  # the tests session installs .[all]; absence must fail, not skip

    assert truststore.SSLContext
    ctx = tls.client_context(use_truststore=True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    report = tls.check_context(ctx, side="client")
    assert report.ok, report.to_text()


def test_input_errors(tmp_path: Path) -> None:
    """Missing files and contradictory options raise InvalidInputError before any I/O."""
    with pytest.raises(InvalidInputError, match="certfile"):
        tls.server_context(certfile=tmp_path / "none.pem")
    with pytest.raises(InvalidInputError, match="either cafile or use_truststore"):
        tls.client_context(cafile=__file__, use_truststore=True)
    with pytest.raises(InvalidInputError, match="side"):
        tls.check_context(ssl.create_default_context(), side="middle")
    with pytest.raises(InvalidInputError):
        tls.check_context(object())
    with pytest.raises(InvalidInputError, match="hostname"):
        tls.pyopenssl_client_connection(tls.pyopenssl_client_context(), None, hostname="")


def test_modern_client_cannot_reach_intermediate_only_server(pki: object) -> None:
    """A modern (TLS 1.3) client and a TLS 1.2-only server share no version: refused."""
    policy = profiles.MOZILLA_INTERMEDIATE.replace(protocols=("TLSv1.2",))
    server = tls.server_context(policy=policy, certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    run = serve_once(server)
    with pytest.raises(ssl.SSLError):
        connect(tls.client_context(policy=profiles.MOZILLA_MODERN, cafile=pki.ca), run.port)  # type: ignore[attr-defined]
    run.join()
    assert run.error


def test_policy_violation_events_for_cipher_string(caplog: pytest.LogCaptureFixture) -> None:
    """check_cipher_string emits one tls.policy_violation event naming the rules."""
    with caplog.at_level(logging.WARNING, logger="styku_crypto.tls"):
        tls.check_cipher_string("ECDHE+AES:@SECLEVEL=0")
    events = [r.styku_event for r in caplog.records if r.getMessage() == "tls.policy_violation"]  # type: ignore[attr-defined]
    assert len(events) == 1
    assert "TLS-CIPHER-001" in events[0]["rules"].split(",")
    assert events[0]["errors"] > 1


def test_pyopenssl_client_without_bound_hostname_fails_closed(pki: object) -> None:
    """A pyOpenSSL client connection made without pyopenssl_client_connection is refused."""
    import socket

    from OpenSSL import SSL

    from ._loopback import _blocking_with_os_timeout

    server = tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    run = serve_once(server)
    client = tls.pyopenssl_client_context(cafile=pki.ca)  # type: ignore[attr-defined]
    sock = socket.create_connection(("127.0.0.1", run.port), timeout=5)
    _blocking_with_os_timeout(sock)
    conn = SSL.Connection(client, sock)
    conn.set_connect_state()
    with pytest.raises(SSL.Error):
        conn.do_handshake()
    sock.close()
    run.join()


def test_pyopenssl_client_refuses_wrong_hostname(pki: object) -> None:
    """The host name bound by pyopenssl_client_connection is checked against the SAN."""
    from OpenSSL import SSL

    server = tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    run = serve_once(server)
    client = tls.pyopenssl_client_context(cafile=pki.ca)  # type: ignore[attr-defined]
    with pytest.raises(SSL.Error):
        connect(client, run.port, hostname="not-localhost.example")
    run.join()


def test_native_binding_uses_the_ssl_modules_libssl_even_with_other_copies_loaded() -> None:
    """With a second libssl loaded (psycopg's wheel bundles one) groups still go to _ssl's."""
    import psycopg  # the postgres extra; its binary wheel maps its own libssl copy

    from styku_crypto.tls import _native

    assert psycopg.__version__
    binding = _native.native.__wrapped__()  # bypass the per-process cache
    assert binding is not None
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert binding.set_groups(scratch, ["X25519"])
    assert "libssl" in binding.path
