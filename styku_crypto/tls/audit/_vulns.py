"""Active checks for three historic implementation bugs: Heartbleed, CCS injection, ROBOT.

Each check is a short raw conversation after the server's first flight (TLS 1.2
and older; TLS 1.3 has none of these code paths), designed so that a patched
server answers at once with an alert and only a vulnerable one behaves
differently. Silence is never read as "safe": an inconclusive check leaves the
fact ``None`` with the reason in ``not_tested``.

* **Heartbleed** (CVE-2014-0160): only when the server negotiates the heartbeat
  extension. A heartbeat request claiming 16 KiB of payload but carrying none is
  followed by a bogus handshake message; a patched server discards the request
  and alerts on the bogus message, a vulnerable one first answers with a
  heartbeat response (record type 24).
* **CCS injection** (CVE-2014-0224): a ChangeCipherSpec right after the server's
  flight, then an "encrypted" Finished. A patched server alerts
  ``unexpected_message`` on the early CCS; a vulnerable one accepts it, switches
  to keys derived from an empty master secret and fails the Finished with
  ``bad_record_mac``.
* **ROBOT** (Bleichenbacher oracle, CVE-2017-13099 and siblings): with an RSA
  key-exchange suite, five ClientKeyExchange messages with differently broken
  PKCS #1 v1.5 padding (each followed by CCS and Finished) are sent on five
  connections; identical reactions mean no oracle, different ones an oracle.
  Raw RSA with the server's public key builds the messages: nothing secret is
  involved and nothing is decrypted.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable, Sequence

from styku_crypto.tls.audit import _catalog, _records
from styku_crypto.tls.audit import _clienthello as ch
from styku_crypto.tls.audit._model import Facts, Target
from styku_crypto.tls.audit._starttls import preamble_of
from styku_crypto.tls.audit._wire import Gate, Outcome, ProbeError, Reply, converse

__all__ = ["ccs_injection", "heartbleed", "robot"]

FollowUp = Callable[[Reply], list[bytes] | None]

CONTENT_CCS = 20
CONTENT_HANDSHAKE = 22
CONTENT_HEARTBEAT = 24
ALERT_UNEXPECTED_MESSAGE = 10
ALERT_BAD_RECORD_MAC = 20
ALERT_DECRYPTION_FAILED = 21
HS_CERTIFICATE = 11
HS_CLIENT_KEY_EXCHANGE = 16
EXT_HEARTBEAT = 15


def _record(content_type: int, version: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def _hello(
    target: Target, version: int, suites: Sequence[int], *, heartbeat: bool = False
) -> bytes:
    return ch.client_hello(
        version=version,
        suites=suites,
        groups=[g.code for g in _catalog.groups() if g.kind == "ec"],
        sni=target.server_name,
        heartbeat=heartbeat,
    )


async def heartbleed(
    target: Target,
    version: int,
    suites: Sequence[int],
    negotiated: bool,
    facts: Facts,
    *,
    timeout: float,
    gate: Gate,
) -> None:
    """Set ``facts.heartbleed`` (``False`` when heartbeats are not even negotiated)."""
    if not negotiated:
        facts.heartbleed = False
        return

    def follow_up(reply: Reply) -> list[bytes] | None:
        if reply.hello is None or reply.hello.version != version:
            return None
        return [
            _record(CONTENT_HEARTBEAT, version, b"\x01\x40\x00"),  # request, claims 16384 bytes
            _record(CONTENT_HANDSHAKE, version, b"\xfe\x00\x00\x00"),  # bogus message: alert
        ]

    outcome = await _run(
        target,
        _hello(target, version, suites, heartbeat=True),
        follow_up,
        facts,
        "heartbleed",
        timeout=timeout,
        gate=gate,
    )
    if outcome is None:
        return
    if outcome.kind == "record" and outcome.content_type == CONTENT_HEARTBEAT:
        facts.heartbleed = True
    elif outcome.kind in {"alert", "eof"}:
        facts.heartbleed = False
    else:
        facts.skip("heartbleed", f"inconclusive: {outcome.kind} after the heartbeat request")


async def ccs_injection(
    target: Target,
    version: int,
    suites: Sequence[int],
    facts: Facts,
    *,
    timeout: float,
    gate: Gate,
) -> None:
    """Set ``facts.ccs_injection`` from the reaction to an early ChangeCipherSpec."""

    def follow_up(reply: Reply) -> list[bytes] | None:
        if reply.hello is None or reply.hello.version != version:
            return None
        return [
            _record(CONTENT_CCS, version, b"\x01"),
            _record(CONTENT_HANDSHAKE, version, os.urandom(40)),  # "encrypted" Finished
        ]

    outcome = await _run(
        target,
        _hello(target, version, suites),
        follow_up,
        facts,
        "ccs_injection",
        timeout=timeout,
        gate=gate,
    )
    if outcome is None:
        return
    if outcome.kind == "alert" and outcome.alert in {ALERT_BAD_RECORD_MAC, ALERT_DECRYPTION_FAILED}:
        facts.ccs_injection = True
    elif outcome.kind == "alert" or outcome.kind == "eof":
        facts.ccs_injection = False
    else:
        facts.skip("ccs_injection", f"inconclusive: {outcome.kind} after an early CCS")


def _pkcs1_variants(k: int, version: int) -> list[bytes]:
    """Five PKCS #1 v1.5 plaintexts of *k* bytes: one well formed, four broken differently."""

    def pad(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += bytes(b for b in os.urandom(n) if b)
        return out[:n]

    pms = struct.pack("!H", version) + os.urandom(46)
    filler = pad(k - 3 - 48)
    return [
        b"\x00\x02" + filler + b"\x00" + pms,  # well formed
        b"\x41\x17" + filler + b"\x00" + pms,  # wrong leading bytes
        b"\x00\x02" + filler[:-2] + b"\x00" + pad(2) + pms,  # separator too early
        b"\x00\x02" + filler + b"\x11" + pms,  # no separator at all
        b"\x00\x02" + filler + b"\x00" + b"\x02\x02" + pms[2:],  # wrong version in the PMS
    ]


def _leaf_rsa(reply: Reply) -> tuple[int, int] | None:
    """(n, e) of the RSA leaf certificate in the flight, if any."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    for msg_type, body in reply.messages:
        if msg_type != HS_CERTIFICATE:
            continue
        try:
            chain = _records.parse_certificate_list(body)
            key = x509.load_der_x509_certificate(chain[0]).public_key()
        except (ValueError, IndexError):
            return None
        if isinstance(key, rsa.RSAPublicKey):
            numbers = key.public_numbers()
            return numbers.n, numbers.e
    return None


async def robot(
    target: Target,
    version: int,
    rsa_suites: Sequence[int],
    facts: Facts,
    *,
    timeout: float,
    gate: Gate,
) -> None:
    """Set ``facts.robot``: ``True`` when the server's reactions reveal a padding oracle."""
    if not rsa_suites:
        facts.robot = False  # no RSA key exchange, nothing to attack
        return

    def make_follow_up(index: int) -> FollowUp:
        def follow_up(reply: Reply) -> list[bytes] | None:
            if reply.hello is None or reply.hello.version != version:
                return None
            key = _leaf_rsa(reply)
            if key is None:
                return None
            n, e = key
            k = (n.bit_length() + 7) // 8
            message = _pkcs1_variants(k, version)[index]
            encrypted = pow(int.from_bytes(message, "big"), e, n).to_bytes(k, "big")
            cke = (
                struct.pack("!B", HS_CLIENT_KEY_EXCHANGE)
                + (len(encrypted) + 2).to_bytes(3, "big")
                + struct.pack("!H", len(encrypted))
                + encrypted
            )
            return [
                _record(CONTENT_HANDSHAKE, version, cke),
                _record(CONTENT_CCS, version, b"\x01"),
                _record(CONTENT_HANDSHAKE, version, os.urandom(40)),  # "encrypted" Finished
            ]

        return follow_up

    hello = _hello(target, version, rsa_suites[:1])
    outcomes = await asyncio.gather(
        *(
            _run(target, hello, make_follow_up(i), facts, "robot", timeout=timeout, gate=gate)
            for i in range(5)
        )
    )
    reactions = set()
    for outcome in outcomes:
        if outcome is None:
            return
        if outcome.kind == "timeout":
            facts.skip("robot", "the server went silent after a ClientKeyExchange")
            return
        reactions.add((outcome.kind, outcome.alert))
    facts.robot = len(reactions) > 1


async def _run(
    target: Target,
    hello: bytes,
    follow_up: FollowUp,
    facts: Facts,
    item: str,
    *,
    timeout: float,
    gate: Gate,
) -> Outcome | None:
    try:
        reply, outcome = await converse(
            target.host,
            target.port,
            hello,
            follow_up,
            timeout=timeout,
            gate=gate,
            protocol=preamble_of(target.protocol, target.port),
            server_name=target.server_name,
        )
    except ProbeError as exc:
        facts.skip(item, f"probe failed: {exc}")
        return None
    if outcome is None:
        why = "the server refused the probe's hello" if reply.hello is None else "no RSA leaf key"
        facts.skip(item, why if item == "robot" else "the server refused the probe's hello")
    return outcome
