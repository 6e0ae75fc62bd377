"""Offline audits: :func:`check_context` and :func:`check_cipher_string`.

Nothing here opens a network connection. Versions, options and cipher suites
are read from the context object. Key-exchange groups are not readable through
any Python API, so they are *observed*:

* a client-capable context writes its ClientHello into a memory BIO, and the
  ``supported_groups`` extension is parsed;
* a server context is fed, in memory, one TLS 1.3 ClientHello per candidate
  group (made by pyOpenSSL offering only that group); OpenSSL answers
  ``NO_SUITABLE_KEY_SHARE`` for a group it does not accept.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls._contexts import context_facts
from styku_crypto.tls._policy import PROTOCOLS, FindingCollector, Policy, Report
from styku_crypto.tls._pyopenssl_internals import set_groups_list
from styku_crypto.tls._registry import (
    CipherSuite,
    cipher_by_code,
    cipher_by_name,
    group_by_code,
    group_by_name,
)
from styku_crypto.tls._rules import Severity
from styku_crypto.tls.profiles import DEFAULT

__all__ = ["check_cipher_string", "check_context"]


def emit(event: str, **fields: Any) -> None:
    """Forward to :func:`styku_crypto.events.emit`, imported on first use (cheap import)."""
    from styku_crypto.events._emit import emit as forward

    forward(event, **fields)


def _emit_violations(report: Report) -> None:
    """One ``tls.policy_violation`` WARNING event per non-compliant report.

    A weak cipher string yields a hundred findings; one event listing the rule
    ids keeps logs readable (the report itself has every finding).
    """
    bad = [f for f in report.active if f.severity >= Severity.WARNING]
    if not bad:
        return
    rules = sorted({f.rule_id for f in bad})
    emit(
        "tls.policy_violation",
        capability="tls",
        outcome="failure",
        level=logging.WARNING,
        reason=rules[0] if len(rules) == 1 else "multiple",
        attributes={
            "rules": ",".join(rules),
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "target": report.subject,
            "kind": report.kind,
            "policy": report.policy,
        },
    )


_STDLIB_VERSIONS = {
    ssl.TLSVersion.SSLv3: "SSLv3",
    ssl.TLSVersion.TLSv1: "TLSv1",
    ssl.TLSVersion.TLSv1_1: "TLSv1.1",
    ssl.TLSVersion.TLSv1_2: "TLSv1.2",
    ssl.TLSVersion.TLSv1_3: "TLSv1.3",
}
_WIRE_VERSIONS = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}
# Groups probed against server contexts (OpenSSL names).
_PROBE_GROUPS = (
    "X25519", "X448", "P-256", "P-384", "P-521", "ffdhe2048", "ffdhe3072", "ffdhe4096",
    "ffdhe6144", "ffdhe8192", "X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024",
    "brainpoolP256r1tls13", "brainpoolP384r1tls13", "brainpoolP512r1tls13",
)  # fmt: skip


@dataclass
class _View:
    api: str
    side: str
    versions: list[str]
    suites: list[CipherSuite]
    groups: list[str] | None
    groups_how: str
    compression_off: bool
    renegotiation_off: bool
    server_preference: bool
    verify_required: bool | None = None
    check_hostname: bool | None = None
    hostname_cn: bool | None = None
    mtls_requested_only: bool = False


# ----------------------------------------------------------------- ClientHello parsing


def _parse_client_hello(data: bytes) -> tuple[list[int], list[int], list[int]]:
    """Return (cipher codes, group codes, supported versions) from a ClientHello flight."""
    body = bytearray()
    pos = 0
    while pos + 5 <= len(data):
        rtype, length = data[pos], int.from_bytes(data[pos + 3 : pos + 5], "big")
        if rtype == 22:
            body += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    if len(body) < 4 or body[0] != 1:
        raise ValueError("not a ClientHello")
    hs_len = int.from_bytes(body[1:4], "big")
    hello = bytes(body[4 : 4 + hs_len])
    p = 2 + 32
    p += 1 + hello[p]
    cs_len = int.from_bytes(hello[p : p + 2], "big")
    ciphers = [int.from_bytes(hello[i : i + 2], "big") for i in range(p + 2, p + 2 + cs_len, 2)]
    p += 2 + cs_len
    p += 1 + hello[p]
    groups: list[int] = []
    versions: list[int] = [int.from_bytes(hello[0:2], "big")]
    if p + 2 <= len(hello):
        end = p + 2 + int.from_bytes(hello[p : p + 2], "big")
        p += 2
        while p + 4 <= end:
            etype = int.from_bytes(hello[p : p + 2], "big")
            elen = int.from_bytes(hello[p + 2 : p + 4], "big")
            ext = hello[p + 4 : p + 4 + elen]
            if etype == 10:
                groups = [int.from_bytes(ext[i : i + 2], "big") for i in range(2, len(ext), 2)]
            elif etype == 43:
                versions = [int.from_bytes(ext[i : i + 2], "big") for i in range(1, len(ext), 2)]
            p += 4 + elen
    return ciphers, groups, versions


def _stdlib_client_hello(ctx: ssl.SSLContext) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname="probe.invalid")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _pyopenssl_client_hello(ctx: Any) -> bytes:
    from OpenSSL import SSL

    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    conn.set_tlsext_host_name(b"probe.invalid")
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()
    return bytes(conn.bio_read(1 << 17))


@functools.cache
def _probe_hello(group: str) -> bytes | None:
    """A TLS 1.3 ClientHello offering only *group* (cached: it is only ever fed to memory BIOs)."""
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    if not set_groups_list(ctx, group):
        return None
    try:
        return _pyopenssl_client_hello(ctx)
    except SSL.Error:
        return None


def _server_accepts_stdlib(ctx: ssl.SSLContext, hello: bytes) -> bool:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(hello)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        return True
    except ssl.SSLError as exc:
        return not _refused_because(exc, _GROUP_REFUSALS)
    return True


_GROUP_REFUSALS = ("KEY_SHARE", "SHARED_GROUP")
_VERSION_REFUSALS = ("PROTOCOL", "VERSION")


def _server_accepts_pyopenssl(
    ctx: Any, hello: bytes, refusals: Sequence[str] = _GROUP_REFUSALS
) -> bool:
    """Feed *hello* to a pyOpenSSL server; False only if it refuses for one of *refusals*."""
    from OpenSSL import SSL

    conn = SSL.Connection(ctx, None)
    conn.set_accept_state()
    conn.bio_write(hello)
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        return True
    except SSL.Error as exc:
        return not _refused_because(exc, refusals)
    return True


def _refused_because(exc: BaseException, markers: Sequence[str]) -> bool:
    text = str(exc).upper().replace(" ", "_")
    return any(marker in text for marker in markers)


@functools.cache
def _version_hello(version: str) -> bytes | None:
    from OpenSSL import SSL

    wire = {"TLSv1": SSL.TLS1_VERSION, "TLSv1.1": SSL.TLS1_1_VERSION,
            "TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}  # fmt: skip
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    try:
        ctx.set_min_proto_version(wire[version])
        ctx.set_max_proto_version(wire[version])
        if version != "TLSv1.3":
            ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
        return _pyopenssl_client_hello(ctx)
    except SSL.Error:
        return None


def _probe_server_versions(accepts: Any) -> list[str]:
    found = []
    for version in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"):
        hello = _version_hello(version)
        if hello is not None and accepts(hello):
            found.append(version)
    return found


def _probe_server_groups(accepts: Any) -> list[str]:
    accepted = []
    for name in _PROBE_GROUPS:
        hello = _probe_hello(name)
        if hello is not None and accepts(hello):
            accepted.append(name)
    return accepted


# ----------------------------------------------------------------- views


def _stdlib_view(ctx: ssl.SSLContext, side: str | None) -> _View:
    if side is None:
        side = "client" if ctx.protocol == ssl.PROTOCOL_TLS_CLIENT else "server"
    low = ctx.minimum_version
    high = ctx.maximum_version
    order = [
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
        ssl.TLSVersion.TLSv1_2,
        ssl.TLSVersion.TLSv1_3,
    ]
    no_flags = {
        ssl.TLSVersion.TLSv1: ssl.OP_NO_TLSv1,
        ssl.TLSVersion.TLSv1_1: ssl.OP_NO_TLSv1_1,
        ssl.TLSVersion.TLSv1_2: ssl.OP_NO_TLSv1_2,
        ssl.TLSVersion.TLSv1_3: ssl.OP_NO_TLSv1_3,
    }
    versions = []
    for v in order:
        above = low == ssl.TLSVersion.MINIMUM_SUPPORTED or v >= low
        below = high == ssl.TLSVersion.MAXIMUM_SUPPORTED or v <= high
        if above and below and not ctx.options & no_flags[v]:
            versions.append(_STDLIB_VERSIONS[v])
    suites = []
    for entry in ctx.get_ciphers():
        suite = cipher_by_code(int(entry["id"]) & 0xFFFF)
        if suite is not None:
            suites.append(suite)
    facts = context_facts(ctx)
    groups: list[str] | None
    if side == "client":
        _, codes, _ = _parse_client_hello(_stdlib_client_hello(ctx))
        groups = [g.openssl for c in codes if (g := group_by_code(c)) is not None]
        how = "observed in the context's ClientHello (memory BIO)"
    elif "TLSv1.3" in versions:
        groups = _probe_server_groups(lambda hello: _server_accepts_stdlib(ctx, hello))
        how = "probed with in-memory TLS 1.3 ClientHellos, one group each"
    elif facts is not None:
        groups, how = list(facts.groups), f"recorded at creation ({facts.groups_method})"
    else:
        groups, how = None, "unknown (TLS 1.3 disabled, foreign context)"
    return _View(
        api="stdlib",
        side=side,
        versions=versions,
        suites=suites,
        groups=groups,
        groups_how=how,
        compression_off=bool(ctx.options & ssl.OP_NO_COMPRESSION),
        renegotiation_off=bool(ctx.options & ssl.OP_NO_RENEGOTIATION),
        server_preference=bool(ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE),
        verify_required=ctx.verify_mode == ssl.CERT_REQUIRED,
        check_hostname=ctx.check_hostname,
        hostname_cn=ctx.hostname_checks_common_name,
        mtls_requested_only=side == "server" and ctx.verify_mode == ssl.CERT_OPTIONAL,
    )


def _pyopenssl_view(ctx: Any, side: str | None) -> _View:
    from OpenSSL import SSL

    facts = context_facts(ctx)
    if side is None:
        side = facts.side if facts is not None else "server"
    options = int(ctx.set_options(0))
    try:
        hello = _pyopenssl_client_hello(ctx)
    except SSL.Error:
        hello = b""
    if hello:
        cipher_codes, group_codes, wire_versions = _parse_client_hello(hello)
        suites = [s for c in cipher_codes if (s := cipher_by_code(c)) is not None and not s.scsv]
        versions = sorted(
            {_WIRE_VERSIONS[v] for v in wire_versions if v in _WIRE_VERSIONS},
            key=PROTOCOLS.index,
        )
        groups: list[str] | None = [
            g.openssl for c in group_codes if (g := group_by_code(c)) is not None
        ]
        how = "observed in the context's ClientHello (memory BIO)"
        if side == "server" and "TLSv1.3" in versions:
            groups = _probe_server_groups(lambda h: _server_accepts_pyopenssl(ctx, h))
            how = "probed with in-memory TLS 1.3 ClientHellos, one group each"
    else:
        names = SSL.Connection(ctx, None).get_cipher_list()
        suites = []
        for name in names:
            try:
                suites.append(cipher_by_name(name))
            except InvalidInputError:
                continue
        versions = _probe_server_versions(
            lambda h: _server_accepts_pyopenssl(ctx, h, _VERSION_REFUSALS)
        )
        if "TLSv1.3" in versions:
            groups = _probe_server_groups(lambda h: _server_accepts_pyopenssl(ctx, h))
            how = "probed with in-memory TLS 1.3 ClientHellos, one group each"
        elif facts is not None:
            groups, how = list(facts.groups), f"recorded at creation ({facts.groups_method})"
        else:
            groups, how = None, "unknown (TLS 1.3 disabled, foreign context)"
    verify_mode = ctx.get_verify_mode()
    return _View(
        api="pyopenssl",
        side=side,
        versions=versions,
        suites=suites,
        groups=groups,
        groups_how=how,
        compression_off=bool(options & SSL.OP_NO_COMPRESSION),
        renegotiation_off=bool(options & SSL.OP_NO_RENEGOTIATION),
        server_preference=bool(options & SSL.OP_CIPHER_SERVER_PREFERENCE),
        verify_required=bool(verify_mode & SSL.VERIFY_PEER),
        check_hostname=None,
        hostname_cn=None,
        mtls_requested_only=side == "server"
        and bool(verify_mode & SSL.VERIFY_PEER)
        and not verify_mode & SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
    )


# ----------------------------------------------------------------- rules


def _suite_rules(
    found: FindingCollector, policy: Policy, suites: Sequence[CipherSuite], versions: Sequence[str]
) -> None:
    allowed12 = {cipher_by_name(n).code for n in policy.tls12_ciphers}
    allowed13 = {cipher_by_name(n).code for n in policy.tls13_suites}
    legacy_enabled = any(v != "TLSv1.3" for v in versions)
    offered12 = [s for s in suites if not s.tls13 and not s.scsv] if legacy_enabled else []
    offered13 = [s for s in suites if s.tls13] if "TLSv1.3" in versions else []
    for suite in offered12:
        name = f"{suite.iana} ({suite.openssl or suite.code_hex})"
        if suite.insecure:
            found.add("TLS-CIPHER-002", f"{name} is insecure")
        elif suite.code not in allowed12:
            why = (
                "CBC mode"
                if suite.cbc
                else ("no forward secrecy" if not suite.forward_secret else "not listed")
            )
            found.add("TLS-CIPHER-001", f"{name} is not in the policy ({why})")
        elif not suite.forward_secret:
            found.add("TLS-CIPHER-005", f"{name} uses RSA key transport")
    for suite in offered13:
        if suite.code not in allowed13:
            found.add("TLS-CIPHER-003", f"{suite.iana} is not in the policy")
    if legacy_enabled and not any(s.code in allowed12 for s in offered12):
        found.add("TLS-CIPHER-004", "no allowed TLS 1.2 suite is offered")
    if "TLSv1.3" in versions and not any(s.code in allowed13 for s in offered13):
        found.add("TLS-CIPHER-004", "no allowed TLS 1.3 suite is offered")


def _version_rules(found: FindingCollector, policy: Policy, versions: Sequence[str]) -> None:
    for version in versions:
        if version not in policy.protocols:
            found.add(
                "TLS-PROTO-001",
                f"{version} is enabled; the policy allows {', '.join(policy.protocols)}",
            )
    for version in policy.protocols:
        if version in ("TLSv1.2", "TLSv1.3") and version not in versions:
            found.add("TLS-PROTO-002", f"{version} is disabled")


def _group_rules(found: FindingCollector, policy: Policy, view: _View) -> None:
    allowed = {group_by_name(g).code for g in policy.groups}
    if view.groups is None:
        found.add("TLS-GROUP-002", f"groups could not be determined: {view.groups_how}")
        return
    for name in view.groups:
        group = group_by_name(name)
        if group.code not in allowed:
            found.add(
                "TLS-GROUP-001",
                f"group {group.name} is enabled; policy allows {', '.join(policy.groups)}",
            )
    present = {group_by_name(g).code for g in view.groups}
    facts_missing = [g for g in policy.groups if group_by_name(g).code not in present]
    for name in facts_missing:
        found.add(
            "TLS-GROUP-003",
            f"{name} is in the policy but not enabled (unsupported by this OpenSSL?)",
        )


def check_context(ctx: Any, policy: Policy = DEFAULT, *, side: str | None = None) -> Report:
    """Audit a context object against *policy* without any network traffic.

    Checks the enabled protocol versions, TLS 1.2 and 1.3 suites, key-exchange
    groups (observed in memory, see the module docs), compression,
    renegotiation, server cipher preference, and for client contexts the
    certificate and host-name verification settings.

    Args:
        ctx: an :class:`ssl.SSLContext` or an ``OpenSSL.SSL.Context``.
        policy: the policy to check against (default: Mozilla intermediate 6.0).
        side: ``"server"`` or ``"client"``; inferred when omitted.

    Returns:
        A report; :attr:`Report.ok` is ``True`` when no ERROR finding is active.
        Emits one ``tls.policy_violation`` event listing the rules when not compliant.

    Raises:
        InvalidInputError: *ctx* is neither kind of context, or *side* is invalid.
    """
    if side not in (None, "server", "client"):
        raise InvalidInputError("side must be 'server' or 'client'")
    if isinstance(ctx, ssl.SSLContext):
        view = _stdlib_view(ctx, side)
    else:
        try:
            from OpenSSL import SSL
        except ImportError:  # pragma: no cover - pyOpenSSL is a core dependency
            SSL = None  # type: ignore[assignment]  # noqa: N806
        if SSL is None or not isinstance(ctx, SSL.Context):
            raise InvalidInputError("check_context needs an ssl.SSLContext or OpenSSL.SSL.Context")
        view = _pyopenssl_view(ctx, side)
    found = FindingCollector(policy, f"{view.api} {view.side} context")
    _version_rules(found, policy, view.versions)
    _suite_rules(found, policy, view.suites, view.versions)
    _group_rules(found, policy, view)
    if not view.compression_off:
        found.add("TLS-COMP-001", "OP_NO_COMPRESSION is not set")
    if not view.renegotiation_off:
        found.add("TLS-RENEG-001", "OP_NO_RENEGOTIATION is not set")
    if view.side == "server" and view.server_preference != policy.server_preferred_order:
        state = "on" if view.server_preference else "off"
        found.add(
            "TLS-ORDER-001",
            f"server cipher preference is {state}; the policy wants it "
            f"{'on' if policy.server_preferred_order else 'off'}",
        )
    if view.side == "client":
        if view.verify_required is False:
            found.add("TLS-VERIFY-001", "verify_mode is not CERT_REQUIRED")
        if view.check_hostname is False:
            found.add("TLS-VERIFY-002", "check_hostname is False")
        if view.hostname_cn:
            found.add("TLS-VERIFY-003", "hostname_checks_common_name is True")
    if view.mtls_requested_only:
        found.add("TLS-VERIFY-004", "client certificates are optional")
    facts = context_facts(ctx)
    report = found.report(
        "context",
        details={
            "api": view.api,
            "side": view.side,
            "versions": ", ".join(view.versions),
            "tls12_suites": ", ".join(s.iana for s in view.suites if not s.tls13),
            "tls13_suites": ", ".join(s.iana for s in view.suites if s.tls13),
            "groups": ", ".join(view.groups) if view.groups is not None else "unknown",
            "groups_observed_by": view.groups_how,
            "built_by_styku": facts is not None,
            "openssl": facts.openssl if facts is not None else ssl.OPENSSL_VERSION,
        },
    )
    _emit_violations(report)
    return report


def check_cipher_string(
    cipher_string: str,
    *,
    protocols: Sequence[str] | None = None,
    policy: Policy = DEFAULT,
    tls13_suites: Sequence[str] | None = None,
) -> Report:
    """Audit an OpenSSL cipher string the way a server would receive it.

    The string is expanded by the interpreter's OpenSSL (as nginx's
    ``ssl_ciphers`` or Apache's ``SSLCipherSuite`` would be by the same library).

    Args:
        cipher_string: e.g. ``"HIGH:!aNULL"``.
        protocols: the protocol versions the server enables (default: the policy's).
        policy: the policy to check against.
        tls13_suites: the TLS 1.3 suites configured (default: OpenSSL's default three).

    Returns:
        A report; an unparseable string yields a ``TLS-CIPHER-006`` finding. Emits
        one ``tls.policy_violation`` event listing the rules when not compliant.
    """
    versions = list(protocols) if protocols is not None else list(policy.protocols)
    for version in versions:
        if version not in PROTOCOLS:
            raise InvalidInputError(
                f"unknown protocol {version!r}; expected one of {', '.join(PROTOCOLS)}"
            )
    found = FindingCollector(policy, f"cipher string {cipher_string!r}")
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    suites: list[CipherSuite] = []
    try:
        scratch.set_ciphers(cipher_string)
    except ssl.SSLError:
        found.add(
            "TLS-CIPHER-006", f"OpenSSL rejects {cipher_string!r} (no cipher matches or bad syntax)"
        )
    else:
        for entry in scratch.get_ciphers():
            suite = cipher_by_code(int(entry["id"]) & 0xFFFF)
            if suite is not None and not suite.tls13:
                suites.append(suite)
    for name in (
        tls13_suites
        if tls13_suites is not None
        else ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")
    ):
        suites.append(cipher_by_name(name))
    _version_rules(found, policy, versions)
    if not found.findings or all(f.rule_id != "TLS-CIPHER-006" for f in found.findings):
        _suite_rules(found, policy, suites, versions)
    report = found.report(
        "cipher_string",
        details={
            "expanded": ":".join(s.openssl or s.iana for s in suites if not s.tls13),
            "openssl": ssl.OPENSSL_VERSION,
        },
    )
    _emit_violations(report)
    return report
