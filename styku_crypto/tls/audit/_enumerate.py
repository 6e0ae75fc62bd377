"""Enumeration with the pure-Python prober: protocols, suites, groups, preference, flags.

Each question is answered by ClientHellos and the server's first flight only,
so the local OpenSSL's abilities never limit what is found. Where a question
cannot be asked (a probe timed out, a protocol is absent) the fact stays
``None`` and :attr:`Facts.not_tested` records why: the scanner never reports
"not supported" for something it did not see refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from styku_crypto.tls.audit import _catalog, _records, _vulns
from styku_crypto.tls.audit import _clienthello as ch
from styku_crypto.tls.audit._dhgroups import identify
from styku_crypto.tls.audit._model import Facts, Target
from styku_crypto.tls.audit._starttls import preamble_of
from styku_crypto.tls.audit._wire import Gate, ProbeError, Reply, exchange, no_gate

__all__ = ["Prober", "UnreachableError"]

ALERT_INAPPROPRIATE_FALLBACK = 86
HS_CERTIFICATE = 11
HS_SERVER_KEY_EXCHANGE = 12
HS_CERTIFICATE_STATUS = 22
EXT_STATUS_REQUEST = 5
EXT_EMS = 23
EXT_SESSION_TICKET = 35
EXT_RENEGOTIATION_INFO = 0xFF01
EXT_HEARTBEAT = 15

_LEGACY_VERSIONS = (ch.SSL3, ch.TLS10, ch.TLS11, ch.TLS12)
MLKEM_HYBRID = 0x11EC  # X25519MLKEM768


def _ske_group(reply: Reply) -> int | None:
    """The named curve of the ServerKeyExchange in *reply*, if any."""
    for msg_type, body in reply.messages:
        if msg_type == HS_SERVER_KEY_EXCHANGE:
            try:
                return _records.parse_server_key_exchange(body, "ecdhe").group
            except _records.TLSParseError:
                return None
    return None


def _note_dh_prime(kex: _records.KeyExchange, facts: Facts) -> None:
    """Keep the smallest DH prime seen, and what it is (a published group or custom)."""
    bits = kex.dh_bits or 0
    if facts.dh_bits is not None and facts.dh_bits <= bits:
        return
    facts.dh_bits = bits
    group = identify(kex.dh_prime)
    facts.dh_group = group.label if group is not None else "custom"


def _ske_dh_group(reply: Reply, version: int) -> str | None:
    """The RFC 7919 group name of the DHE ServerKeyExchange prime in *reply*, if one is."""
    if reply.hello is None or reply.hello.version != version:
        return None
    for msg_type, body in reply.messages:
        if msg_type == HS_SERVER_KEY_EXCHANGE:
            try:
                kex = _records.parse_server_key_exchange(body, "dhe")
            except _records.TLSParseError:
                return None
            group = identify(kex.dh_prime)
            return group.name if group is not None and group.source == "RFC 7919" else None
    return None


class UnreachableError(Exception):
    """No probe got any TLS answer from the target."""


def _offer_order(suites: Sequence[_catalog.CipherSuite]) -> list[int]:
    """Strong suites first so a baseline hello lands on what a browser would get."""

    def rank(s: _catalog.CipherSuite) -> tuple[int, int, int]:
        return (0 if s.forward_secret else 1, 0 if s.aead else 1, -_catalog.strength(s))

    return [s.code for s in sorted(suites, key=rank)]


@dataclass
class _Found:
    """The ServerHello of a baseline probe for one version."""

    version: int
    reply: Reply


class Prober:
    """Runs every wire probe for one target.

    Args:
        target: the endpoint.
        timeout: seconds per connection.
        gate: limits concurrent connections (global and per host).
    """

    def __init__(self, target: Target, *, timeout: float, gate: Gate = no_gate) -> None:
        self.target = target
        self.timeout = timeout
        self.gate = gate
        self.preamble = preamble_of(target.protocol, target.port)
        self.legacy_suites = _offer_order([s for s in _catalog.suites() if not s.tls13])
        self.tls13_suites = [s.code for s in _catalog.suites() if s.tls13]
        self.ec_groups = [g.code for g in _catalog.groups() if g.kind == "ec"]
        self.ecdhe_suites = [
            c for c in self.legacy_suites if _catalog.kx(_catalog.suite_by_code(c)) == "ecdhe"
        ]
        self.all_groups = [g.code for g in _catalog.groups()]
        self.answered = False
        # TLS 1.3 probes send no key share by default: the server answers with a
        # cheap HelloRetryRequest (no key exchange, no signature) naming the suite.
        self.tls13_shares: tuple[int, ...] = ()
        self.errors: list[str] = []

    async def _send(
        self, payload: bytes, *, full_flight: bool = False, sslv2: bool = False
    ) -> Reply:
        reply = await exchange(
            self.target.host,
            self.target.port,
            payload,
            timeout=self.timeout,
            gate=self.gate,
            full_flight=full_flight,
            sslv2=sslv2,
            protocol=self.preamble,
            server_name=self.target.server_name,
        )
        if reply.kind in {"hello", "alert", "sslv2"}:
            self.answered = True
        return reply

    def _hello(
        self,
        version: int,
        suites: Sequence[int],
        *,
        groups: Sequence[int] | None = None,
        key_shares: Sequence[int] | None = None,
        compression: Sequence[int] = (0,),
        status_request: bool = False,
        session_ticket: bool = False,
        heartbeat: bool = False,
        fallback_scsv: bool = False,
    ) -> bytes:
        tls13 = version >= ch.TLS13
        return ch.client_hello(
            version=version,
            suites=suites,
            groups=groups if groups is not None else (self.all_groups if tls13 else self.ec_groups),
            key_shares=key_shares
            if key_shares is not None
            else (self.tls13_shares if tls13 else ()),
            compression=compression,
            status_request=status_request,
            session_ticket=session_ticket,
            heartbeat=heartbeat,
            fallback_scsv=fallback_scsv,
            sni=self.target.server_name,
        )

    async def run(self, facts: Facts) -> None:
        """Fill *facts* with everything the prober can learn.

        Raises:
            UnreachableError: no TLS answer to any baseline probe.
        """
        # SSLv2 runs on the side: a server that ignores the old format costs a
        # timeout there, which must not hold up everything else.
        sslv2 = asyncio.ensure_future(self._probe_sslv2(facts))
        try:
            await self._run(facts, sslv2)
            await sslv2
        finally:
            if not sslv2.done():
                sslv2.cancel()

    async def _run(self, facts: Facts, sslv2: asyncio.Future[None]) -> None:
        baseline = await asyncio.gather(
            *(self._probe_version(v, facts) for v in (*_LEGACY_VERSIONS, ch.TLS13))
        )
        if not self.answered:
            await sslv2
        if not self.answered:
            errors = sorted(set(self.errors))
            raise UnreachableError(
                "; ".join(errors) or "every connection was closed or reset without a TLS answer"
            )
        found = [b for b in baseline if isinstance(b, _Found)]
        self._flags_from_baseline(found, facts)
        tasks = [self._enumerate_legacy(f.version, facts) for f in found if f.version < ch.TLS13]
        if facts.protocols.get("TLSv1.3"):
            tasks.append(self._enumerate_tls13(facts))
            tasks.append(self._groups_tls13(facts))
        else:
            self._skip_tls13_groups(facts)
        legacy = [f.version for f in found if f.version < ch.TLS13]
        if legacy:
            tasks.append(self._groups_legacy(max(legacy), facts))
        tasks.append(self._fallback_scsv(facts))
        await asyncio.gather(*tasks)
        await self._ffdhe_legacy(legacy, facts)
        await self._vulnerabilities(found, facts)

    # --- protocols ---------------------------------------------------------

    async def _probe_sslv2(self, facts: Facts) -> None:
        try:
            reply = await self._send(ch.sslv2_client_hello(), sslv2=True)
        except ProbeError as exc:
            if exc.kind in {"protocol", "timeout"}:
                # An SSLv2 server answers a CLIENT-HELLO at once with a
                # SERVER-HELLO; garbage or silence is a definite "no".
                facts.protocols["SSLv2"] = False
                return
            facts.protocols["SSLv2"] = None
            facts.skip("SSLv2", f"probe failed: {exc}")
            self.errors.append(f"probe failed: {exc}")
            return
        facts.protocols["SSLv2"] = reply.kind == "sslv2" and bool(reply.sslv2)

    async def _probe_version(self, version: int, facts: Facts) -> _Found | None:
        name = ch.VERSION_NAMES[version]
        if version >= ch.TLS13:
            payload = self._hello(
                version,
                self.tls13_suites,
                status_request=True,
                key_shares=(MLKEM_HYBRID, 0x001D, 0x0017),
            )
        else:
            payload = self._hello(
                version,
                self.legacy_suites,
                status_request=True,
                compression=(1, 0),
                session_ticket=True,
                heartbeat=True,
            )
        try:
            reply = await self._send(payload, full_flight=True)
        except ProbeError as exc:
            facts.protocols[name] = None
            facts.skip(name, f"probe failed: {exc}")
            self.errors.append(f"probe failed: {exc}")
            return None
        hello = reply.hello
        ok = hello is not None and (
            hello.version == version or (hello.is_hrr and version >= ch.TLS13)
        )
        facts.protocols[name] = ok
        return _Found(version, reply) if ok else None

    def _flags_from_baseline(self, found: list[_Found], facts: Facts) -> None:
        legacy = [f for f in found if f.version < ch.TLS13]
        if not legacy:
            why = "no protocol below TLS 1.3 offered (TLS 1.3 has none of these)"
            for item in ("ems", "secure_renegotiation", "compression"):
                facts.skip(item, why)
            return
        best = max(legacy, key=lambda f: f.version)
        hello = best.reply.hello
        if hello is None:  # a _Found always carries one; kept for the type checker
            return
        facts.ems = EXT_EMS in hello.extensions
        facts.secure_renegotiation = EXT_RENEGOTIATION_INFO in hello.extensions
        facts.compression = hello.compression != 0
        facts.session_tickets = EXT_SESSION_TICKET in hello.extensions
        types = [t for t, _ in best.reply.messages]
        stapled = EXT_STATUS_REQUEST in hello.extensions and HS_CERTIFICATE_STATUS in types
        facts.ocsp_stapling = bool(facts.ocsp_stapling) or stapled
        for msg_type, body in best.reply.messages:
            if msg_type == HS_CERTIFICATE and not facts.certificates:
                try:
                    facts.certificates = list(_records.parse_certificate_list(body))
                except _records.TLSParseError as exc:
                    facts.skip("certificate", f"malformed Certificate message: {exc}")

    # --- suites -------------------------------------------------------------

    async def _enumerate_legacy(self, version: int, facts: Facts) -> None:
        name = ch.VERSION_NAMES[version]
        remaining = list(self.legacy_suites)
        accepted: list[int] = []
        for _ in range(len(self.legacy_suites) + 1):
            if not remaining:
                break
            try:
                reply = await self._send(self._hello(version, remaining), full_flight=True)
            except ProbeError as exc:
                facts.skip(f"suites {name}", f"enumeration stopped: {exc}")
                break
            hello = reply.hello
            if hello is None or hello.version != version or hello.cipher_suite not in remaining:
                break
            accepted.append(hello.cipher_suite)
            remaining.remove(hello.cipher_suite)
            self._key_exchange(hello.cipher_suite, reply, facts)
        facts.suites[name] = [_catalog.suite_by_code(c).iana for c in accepted]
        facts.server_preference[name] = await self._preference(version, accepted, facts)

    async def _enumerate_tls13(self, facts: Facts) -> None:
        remaining = list(self.tls13_suites)
        accepted: list[int] = []
        for _ in range(len(self.tls13_suites) + 2):
            if not remaining:
                break
            try:
                reply = await self._send(self._hello(ch.TLS13, remaining))
            except ProbeError as exc:
                facts.skip("suites TLSv1.3", f"enumeration stopped: {exc}")
                break
            hello = reply.hello
            if hello is None and not accepted and not self.tls13_shares:
                # A server that will not answer an empty key_share: send real ones.
                self.tls13_shares = (0x001D, 0x0017)
                continue
            if hello is None or hello.version != ch.TLS13 or hello.cipher_suite not in remaining:
                break
            accepted.append(hello.cipher_suite)
            remaining.remove(hello.cipher_suite)
        facts.suites["TLSv1.3"] = [_catalog.suite_by_code(c).iana for c in accepted]
        facts.server_preference["TLSv1.3"] = await self._preference(ch.TLS13, accepted, facts)

    def _key_exchange(self, code: int, reply: Reply, facts: Facts) -> None:
        kind = _catalog.kx(_catalog.suite_by_code(code))
        if kind not in {"ecdhe", "dhe"}:
            return
        for msg_type, body in reply.messages:
            if msg_type != HS_SERVER_KEY_EXCHANGE:
                continue
            try:
                kex = _records.parse_server_key_exchange(body, kind)
            except _records.TLSParseError:
                return
            if kex.dh_bits is not None:
                _note_dh_prime(kex, facts)
            if kex.group is not None:
                bits = _catalog.group_by_code(kex.group).bits
                if bits:
                    facts.ecdh_bits = (
                        bits if facts.ecdh_bits is None else min(facts.ecdh_bits, bits)
                    )

    async def _preference(self, version: int, accepted: list[int], facts: Facts) -> bool | None:
        name = ch.VERSION_NAMES[version]
        if len(accepted) < 2:
            facts.skip(f"server preference {name}", "fewer than two suites accepted")
            return None
        # Independent probes: concurrently, one round trip off the critical path.
        first, second = await asyncio.gather(
            self._send(self._hello(version, accepted)),
            self._send(self._hello(version, list(reversed(accepted)))),
            return_exceptions=True,
        )
        chosen: list[int] = []
        for reply in (first, second):
            if isinstance(reply, ProbeError):
                facts.skip(f"server preference {name}", f"probe failed: {reply}")
                return None
            if isinstance(reply, BaseException):
                raise reply
            if reply.hello is None:
                facts.skip(f"server preference {name}", "server refused a suite it had accepted")
                return None
            chosen.append(reply.hello.cipher_suite)
        return chosen[0] == chosen[1]

    # --- groups -------------------------------------------------------------

    def _skip_tls13_groups(self, facts: Facts) -> None:
        for g in _catalog.groups():
            if g.kind in {"pq", "hybrid"}:
                facts.skip(f"group {g.name}", "defined for TLS 1.3 only, which is not offered")

    async def _group13(self, group: _catalog.Group, facts: Facts) -> None:
        try:
            reply = await self._send(
                self._hello(
                    ch.TLS13, self.tls13_suites, groups=[group.code], key_shares=[group.code]
                )
            )
        except ProbeError as exc:
            facts.skip(f"group {group.name}", f"probe failed: {exc}")
            return
        hello = reply.hello
        if hello is not None and hello.version == ch.TLS13 and hello.selected_group == group.code:
            facts.groups.setdefault(group.name, []).append("TLSv1.3")

    async def _groups_tls13(self, facts: Facts) -> None:
        """Offer every untested group; the server names one (ServerHello or HRR); repeat.

        No key share is sent except the 1216-byte X25519MLKEM768 one, so a server
        answers with a HelloRetryRequest naming the group it wants, or with a
        ServerHello for the hybrid. A server that answers none of this (some
        refuse an empty key share) gets one probe per group instead.
        """
        remaining = [g.code for g in _catalog.groups()]
        for _ in range(len(remaining) + 1):
            if not remaining:
                return
            shares = [c for c in (MLKEM_HYBRID,) if c in remaining]
            try:
                reply = await self._send(
                    self._hello(ch.TLS13, self.tls13_suites, groups=remaining, key_shares=shares)
                )
            except ProbeError as exc:
                facts.skip("groups TLSv1.3", f"enumeration stopped: {exc}")
                return
            hello = reply.hello
            chosen = hello.selected_group if hello is not None else None
            if (
                hello is None
                or hello.version != ch.TLS13
                or chosen is None
                or chosen not in remaining
            ):
                break
            facts.groups.setdefault(_catalog.group_by_code(chosen).name, []).append("TLSv1.3")
            remaining.remove(chosen)
        if not any("TLSv1.3" in v for v in facts.groups.values()):
            await asyncio.gather(*(self._group13(g, facts) for g in _catalog.groups()))

    async def _group12(self, version: int, group: _catalog.Group, facts: Facts) -> None:
        try:
            reply = await self._send(
                self._hello(version, self.ecdhe_suites, groups=[group.code]), full_flight=True
            )
        except ProbeError as exc:
            facts.skip(f"group {group.name}", f"probe failed: {exc}")
            return
        hello = reply.hello
        if hello is None or hello.version != version:
            return
        for msg_type, body in reply.messages:
            if msg_type == HS_SERVER_KEY_EXCHANGE:
                try:
                    kex = _records.parse_server_key_exchange(body, "ecdhe")
                except _records.TLSParseError:
                    return
                if kex.group == group.code:
                    facts.groups.setdefault(group.name, []).append(ch.VERSION_NAMES[version])

    async def _groups_legacy(self, version: int, facts: Facts) -> None:
        """Offer every untested EC group with ECDHE suites; the ServerKeyExchange names one."""
        ec = [g for g in _catalog.groups() if g.kind == "ec" and not g.name.endswith("tls13")]
        remaining = [g.code for g in ec]
        found = 0
        for _ in range(len(remaining) + 1):
            if not remaining:
                break
            try:
                reply = await self._send(
                    self._hello(version, self.ecdhe_suites, groups=remaining), full_flight=True
                )
            except ProbeError as exc:
                facts.skip(f"groups {ch.VERSION_NAMES[version]}", f"enumeration stopped: {exc}")
                break
            chosen = _ske_group(reply) if reply.hello and reply.hello.version == version else None
            if chosen is None or chosen not in remaining:
                break
            name = _catalog.group_by_code(chosen).name
            facts.groups.setdefault(name, []).append(ch.VERSION_NAMES[version])
            remaining.remove(chosen)
            found += 1
        if not found and any(
            _catalog.kx(_catalog.suite_by_code(c)) == "ecdhe"
            for names in facts.suites.values()
            for c in (_catalog.suite_by_name(n).code for n in names)
        ):
            await asyncio.gather(*(self._group12(version, g, facts) for g in ec))

    async def _ffdhe_legacy(self, versions: list[int], facts: Facts) -> None:
        """RFC 7919 in TLS 1.2 and older: DHE suites only, ``ffdhe*`` only in supported_groups.

        A server implementing RFC 7919 answers with one of the offered groups'
        primes (named by :mod:`._dhgroups`); it is removed and the rest offered
        again. A server that ignores the extension sends its own prime: then no
        group is negotiable there, an observed "no". One elimination per
        version, the versions concurrently.
        """
        dhe_by_version = {
            version: [
                _catalog.suite_by_name(n).code
                for n in facts.suites.get(ch.VERSION_NAMES[version], [])
                if _catalog.kx(_catalog.suite_by_name(n)) == "dhe"
            ]
            for version in versions
        }
        runs = [self._ffdhe_version(v, dhe, facts) for v, dhe in dhe_by_version.items() if dhe]
        if runs:
            await asyncio.gather(*runs)
            order = list(ch.VERSION_NAMES.values())
            for g in _catalog.groups():
                if g.kind == "ffdhe" and g.name in facts.groups:
                    facts.groups[g.name].sort(key=order.index)
        elif not facts.protocols.get("TLSv1.3"):
            for g in _catalog.groups():
                if g.kind == "ffdhe":
                    facts.skip(f"group {g.name}", "no DHE suite accepted (FFDHE groups need one)")

    async def _ffdhe_version(self, version: int, dhe: list[int], facts: Facts) -> None:
        name = ch.VERSION_NAMES[version]
        remaining = {g.name: g.code for g in _catalog.groups() if g.kind == "ffdhe"}
        found: list[str] = []
        while remaining:
            try:
                reply = await self._send(
                    self._hello(version, dhe, groups=list(remaining.values())), full_flight=True
                )
            except ProbeError as exc:
                facts.skip(f"ffdhe groups {name}", f"enumeration stopped: {exc}")
                break
            chosen = _ske_dh_group(reply, version)
            if chosen is None or chosen not in remaining:
                break
            found.append(chosen)
            del remaining[chosen]
        for group in found:  # after the await: keep the per-group version lists in order
            facts.groups.setdefault(group, []).append(name)

    # --- implementation bugs ------------------------------------------------------

    async def _vulnerabilities(self, found: list[_Found], facts: Facts) -> None:
        legacy = [f for f in found if f.version < ch.TLS13]
        if not legacy:
            why = "no protocol below TLS 1.3 offered (TLS 1.3 has none of these code paths)"
            for item in ("heartbleed", "ccs_injection", "robot"):
                facts.skip(item, why)
            return
        best = max(legacy, key=lambda f: f.version)
        hello = best.reply.hello
        name = ch.VERSION_NAMES[best.version]
        accepted = [_catalog.suite_by_name(n).code for n in facts.suites.get(name, [])]
        suites = accepted or self.legacy_suites
        rsa = [c for c in accepted if _catalog.kx(_catalog.suite_by_code(c)) == "rsa"]
        negotiated = hello is not None and EXT_HEARTBEAT in hello.extensions
        t, g = self.timeout, self.gate
        await asyncio.gather(
            _vulns.heartbleed(
                self.target, best.version, suites, negotiated, facts, timeout=t, gate=g
            ),
            _vulns.ccs_injection(self.target, best.version, suites, facts, timeout=t, gate=g),
            _vulns.robot(self.target, best.version, rsa, facts, timeout=t, gate=g),
        )

    # --- downgrade protection --------------------------------------------------

    async def _accepted_without_scsv(self, version: int) -> bool:
        """The control for a silent hang-up: is the same hello, minus the SCSV, accepted?"""
        try:
            reply = await self._send(self._hello(version, self.legacy_suites))
        except ProbeError:
            return False
        return reply.hello is not None and reply.hello.version == version

    async def _fallback_scsv(self, facts: Facts) -> None:
        order = ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
        offered = [v for v in order if facts.protocols.get(v)]
        if len(offered) < 2:
            facts.skip(
                "fallback_scsv", "fewer than two TLS versions offered: no downgrade possible"
            )
            return
        lower = {
            "TLSv1.0": ch.TLS10,
            "TLSv1.1": ch.TLS11,
            "TLSv1.2": ch.TLS12,
        }[offered[-2]]
        try:
            reply = await self._send(self._hello(lower, self.legacy_suites, fallback_scsv=True))
        except ProbeError as exc:
            facts.skip("fallback_scsv", f"probe failed: {exc}")
            return
        if reply.alert is not None and reply.alert.description == ALERT_INAPPROPRIATE_FALLBACK:
            facts.fallback_scsv = True
        elif reply.hello is not None:
            facts.fallback_scsv = False
        elif reply.kind == "closed" and await self._accepted_without_scsv(lower):
            # Some servers (Dovecot, slapd, asyncio-based ones) hang up without
            # flushing the inappropriate_fallback alert. The same hello without
            # the SCSV is accepted, so the SCSV alone made it refuse: supported.
            facts.fallback_scsv = True
        else:
            detail = reply.detail or (
                f"alert {reply.alert.description}" if reply.alert is not None else reply.kind
            )
            facts.skip(
                "fallback_scsv",
                f"ambiguous answer (neither inappropriate_fallback nor hello: {detail})",
            )
