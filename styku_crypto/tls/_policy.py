"""The TLS :class:`Policy` data model, waivers, findings and reports."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from styku_crypto.exceptions import InvalidPolicyError, PolicyViolationError
from styku_crypto.tls._registry import cipher_by_name, group_by_name
from styku_crypto.tls._rules import RULES, Rule, Severity

if TYPE_CHECKING:
    import ssl

__all__ = [
    "PROTOCOLS",
    "REPORT_SCHEMA",
    "Finding",
    "Policy",
    "Report",
    "Waiver",
]

#: Protocol names in Mozilla's spelling, oldest first.
PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

#: ``ssl.TLSVersion`` member names (``ssl`` itself is imported on first use).
_TLS_VERSION = {
    "SSLv3": "SSLv3",
    "TLSv1": "TLSv1",
    "TLSv1.1": "TLSv1_1",
    "TLSv1.2": "TLSv1_2",
    "TLSv1.3": "TLSv1_3",
}

#: Version tag of the JSON document produced by :meth:`Report.to_dict`.
REPORT_SCHEMA = "styku-tls-report/1"

_KEY_TYPES = frozenset({"rsa", "ecdsa", "ed25519", "ed448"})
_CURVES = frozenset({"prime256v1", "secp256r1", "secp384r1", "secp521r1"})


@dataclass(frozen=True)
class Waiver:
    """A time-boxed exception to one rule for one target.

    Attributes:
        rule: the rule id it waives, e.g. ``"CERT-LIFETIME-001"``.
        target: what it applies to: a host name, ``host:port``, a file name or a
            shell-style pattern (``"*.legacy.example.com"``, ``"*"``).
        reason: why the exception was granted (shown in reports).
        expires: the last day (UTC) on which the waiver applies. An expired
            waiver stops applying: the finding counts again.
    """

    rule: str
    target: str
    reason: str
    expires: date

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise InvalidPolicyError(f"waiver names unknown rule id {self.rule!r}")
        if not self.target or not self.reason.strip():
            raise InvalidPolicyError(f"waiver for {self.rule} needs a target and a reason")

    def applies(self, rule_id: str, target: str, *, today: date) -> bool:
        """Whether this waiver covers *rule_id* on *target* on *today* (UTC)."""
        if rule_id != self.rule or today > self.expires:
            return False
        return fnmatch.fnmatchcase(target.lower(), self.target.lower())

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {
            "rule": self.rule,
            "target": self.target,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
        }


def _tuple_of_str(value: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidPolicyError(f"{what} must be a list of strings, not a string")
    return tuple(value)


@dataclass(frozen=True)
class Policy:
    """A TLS policy: what a server or client may offer and what certificates pass.

    Policies are immutable. Build variants with :meth:`replace` or from a policy
    file (:func:`~styku_crypto.tls.load_policy`). The Mozilla-derived profiles
    live in :mod:`styku_crypto.tls.profiles`.

    Attributes:
        name: short name, e.g. ``"mozilla-6.0-intermediate"``.
        guideline_version: the Mozilla Server Side TLS guideline the data comes
            from (``"6.0"``), or the base guideline of a custom overlay.
        profile: the Mozilla configuration it derives from (``"modern"``,
            ``"intermediate"``, ``"old"``) or ``"custom"``.
        protocols: allowed protocol versions, Mozilla spelling (``"TLSv1.2"``).
        tls12_ciphers: allowed TLS 1.0-1.2 suites, IANA names, in preference order.
        tls12_ciphers_openssl: the same suites, OpenSSL names, in preference order.
        tls13_suites: allowed TLS 1.3 suites (IANA names).
        groups: allowed key-exchange groups, in preference order (Mozilla spelling).
        certificate_types: allowed certificate key types (``"ecdsa"``, ``"rsa"``).
        certificate_curves: allowed ECDSA certificate curves.
        certificate_signatures: allowed certificate signature algorithms
            (OpenSSL names, e.g. ``"ecdsa-with-SHA256"``).
        rsa_min_bits: minimum RSA key size (certificates and, for DHE, the
            finite-field group).
        dh_param_size: minimum finite-field DH size, or ``None`` when DHE is not allowed.
        ecdh_param_size: minimum ECDH group size in bits.
        max_certificate_lifetime_days: longest allowed validity period.
        recommended_certificate_lifetime_days: Mozilla's recommendation (informative).
        expiry_warn_days: warn when a certificate expires within this many days.
        expiry_fail_days: fail when a certificate expires within this many days.
        hsts_min_age: minimum ``Strict-Transport-Security`` max-age in seconds.
        ocsp_staple: whether servers should staple OCSP responses.
        server_preferred_order: whether the server should impose its cipher order.
        oldest_clients: informative list of the oldest compatible clients.
        severities: per-rule severity overrides, as ``(rule id, severity)`` pairs.
        waivers: time-boxed exceptions.
        source: where the policy came from (data file, policy file path).
    """

    name: str
    guideline_version: str
    profile: str
    protocols: tuple[str, ...]
    tls12_ciphers: tuple[str, ...]
    tls12_ciphers_openssl: tuple[str, ...]
    tls13_suites: tuple[str, ...]
    groups: tuple[str, ...]
    certificate_types: tuple[str, ...]
    certificate_curves: tuple[str, ...]
    certificate_signatures: tuple[str, ...]
    rsa_min_bits: int
    dh_param_size: int | None
    ecdh_param_size: int | None
    max_certificate_lifetime_days: int
    recommended_certificate_lifetime_days: int | None
    hsts_min_age: int
    ocsp_staple: bool
    server_preferred_order: bool
    expiry_warn_days: int = 30
    expiry_fail_days: int = 7
    oldest_clients: tuple[str, ...] = ()
    severities: tuple[tuple[str, Severity], ...] = ()
    waivers: tuple[Waiver, ...] = ()
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in (
            "protocols",
            "tls12_ciphers",
            "tls12_ciphers_openssl",
            "tls13_suites",
            "groups",
            "certificate_types",
            "certificate_curves",
            "certificate_signatures",
            "oldest_clients",
        ):
            object.__setattr__(self, name, _tuple_of_str(getattr(self, name), name))
        object.__setattr__(self, "severities", tuple(self.severities))
        object.__setattr__(self, "waivers", tuple(self.waivers))
        self._validate()

    def _validate(self) -> None:
        """Raise :class:`InvalidPolicyError` naming the first setting that is not valid."""
        if not self.name:
            raise InvalidPolicyError("a policy needs a name")
        self._validate_protocols()
        self._validate_suites()
        self._validate_certificates()
        self._validate_numbers()
        for rule_id, severity in self.severities:
            if rule_id not in RULES:
                raise InvalidPolicyError(f"severity: unknown rule id {rule_id!r}")
            if not isinstance(severity, Severity):
                raise InvalidPolicyError(f"severity for {rule_id}: not a Severity")

    def _validate_protocols(self) -> None:
        if not self.protocols:
            raise InvalidPolicyError("protocols: a policy must allow at least one version")
        for proto in self.protocols:
            if proto not in _TLS_VERSION:
                raise InvalidPolicyError(
                    f"protocols: unknown version {proto!r}; expected one of {', '.join(PROTOCOLS)}"
                )
        if "TLSv1.3" in self.protocols and not self.tls13_suites:
            raise InvalidPolicyError("tls13_suites: TLSv1.3 is allowed but no suite is")
        if any(p != "TLSv1.3" for p in self.protocols) and not self.tls12_ciphers:
            raise InvalidPolicyError("tls12_ciphers: TLS 1.2 or older is allowed but no suite is")

    def _validate_suites(self) -> None:
        for name in self.tls12_ciphers + self.tls12_ciphers_openssl:
            try:
                suite = cipher_by_name(name)
            except ValueError:
                raise InvalidPolicyError(f"tls12_ciphers: unknown cipher suite {name!r}") from None
            if suite.tls13:
                raise InvalidPolicyError(f"tls12_ciphers: {name!r} is a TLS 1.3 suite")
        if {cipher_by_name(n).code for n in self.tls12_ciphers} != {
            cipher_by_name(n).code for n in self.tls12_ciphers_openssl
        }:
            raise InvalidPolicyError(
                "tls12_ciphers: the IANA and OpenSSL lists name different suites"
            )
        for name in self.tls13_suites:
            try:
                suite = cipher_by_name(name)
            except ValueError:
                raise InvalidPolicyError(f"tls13_suites: unknown suite {name!r}") from None
            if not suite.tls13:
                raise InvalidPolicyError(f"tls13_suites: {name!r} is not a TLS 1.3 suite")
        for name in self.groups:
            try:
                group_by_name(name)
            except ValueError:
                raise InvalidPolicyError(f"groups: unknown named group {name!r}") from None

    def _validate_certificates(self) -> None:
        for key_type in self.certificate_types:
            if key_type not in _KEY_TYPES:
                raise InvalidPolicyError(
                    f"certificate_types: unknown key type {key_type!r}; "
                    f"expected some of {', '.join(sorted(_KEY_TYPES))}"
                )
        for curve in self.certificate_curves:
            if curve not in _CURVES:
                raise InvalidPolicyError(f"certificate_curves: unknown curve {curve!r}")

    def _validate_numbers(self) -> None:
        for name, value in (
            ("rsa_min_bits", self.rsa_min_bits),
            ("max_certificate_lifetime_days", self.max_certificate_lifetime_days),
            ("hsts_min_age", self.hsts_min_age),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidPolicyError(f"{name}: must be a positive integer, got {value!r}")
        for name, value in (
            ("expiry_warn_days", self.expiry_warn_days),
            ("expiry_fail_days", self.expiry_fail_days),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidPolicyError(f"{name}: must be a non-negative integer, got {value!r}")
        if self.expiry_fail_days > self.expiry_warn_days:
            raise InvalidPolicyError("expiry_fail_days: must not exceed expiry_warn_days")

    # ------------------------------------------------------------------ queries

    def replace(self, **changes: Any) -> Policy:
        """Return a copy with *changes* applied (validated like a new policy).

        Raises:
            InvalidPolicyError: the result is not a valid policy.
        """
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise InvalidPolicyError(str(exc)) from None

    def severity(self, rule_id: str) -> Severity:
        """The effective severity of *rule_id* under this policy."""
        for overridden, severity in self.severities:
            if overridden == rule_id:
                return severity
        return RULES[rule_id].severity

    def waiver_for(self, rule_id: str, target: str, *, today: date | None = None) -> Waiver | None:
        """The first unexpired waiver covering *rule_id* on *target*, if any."""
        day = today if today is not None else datetime.now(UTC).date()
        for waiver in self.waivers:
            if waiver.applies(rule_id, target, today=day):
                return waiver
        return None

    @property
    def tls_versions(self) -> tuple[ssl.TLSVersion, ...]:
        """Allowed versions as :class:`ssl.TLSVersion`, oldest first."""
        import ssl

        return tuple(ssl.TLSVersion[_TLS_VERSION[p]] for p in PROTOCOLS if p in self.protocols)

    @property
    def minimum_version(self) -> ssl.TLSVersion:
        """The oldest allowed version."""
        return self.tls_versions[0]

    @property
    def maximum_version(self) -> ssl.TLSVersion:
        """The newest allowed version."""
        return self.tls_versions[-1]

    @property
    def openssl_cipher_string(self) -> str:
        """The TLS 1.2 suites as an OpenSSL cipher string (``""`` when TLS 1.3 only)."""
        return ":".join(self.tls12_ciphers_openssl)

    @property
    def tls13_cipher_string(self) -> str:
        """The TLS 1.3 suites as an OpenSSL ``Ciphersuites`` string."""
        return ":".join(self.tls13_suites)

    @property
    def rsa_allowed(self) -> bool:
        """Whether RSA certificates are allowed."""
        return "rsa" in self.certificate_types

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shipped profile data format)."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "severities":
                value = {rule_id: str(sev) for rule_id, sev in value}
            elif item.name == "waivers":
                value = [w.to_dict() for w in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build a policy from :meth:`to_dict` output.

        Raises:
            InvalidPolicyError: unknown or missing fields, invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidPolicyError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        values["severities"] = tuple(
            (rule_id, Severity.parse(sev))
            for rule_id, sev in dict(data.get("severities", {})).items()
        )
        values["waivers"] = tuple(
            Waiver(
                rule=w["rule"],
                target=w["target"],
                reason=w["reason"],
                expires=date.fromisoformat(str(w["expires"])),
            )
            for w in data.get("waivers", [])
        )
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidPolicyError(f"incomplete policy: {exc}") from None

    def __str__(self) -> str:
        return f"{self.name} (Mozilla guideline {self.guideline_version}, {self.profile})"


@dataclass(frozen=True)
class Finding:
    """One policy finding.

    Attributes:
        rule_id: the rule that fired (see :data:`~styku_crypto.tls.RULES`).
        severity: effective severity under the policy used.
        message: what was found, specific to the subject.
        remediation: what to change.
        target: what the finding is about (host, file, ``"context"``).
        waiver: the waiver that covers it, if any; a waived finding does not
            count towards :attr:`Report.ok`.
    """

    rule_id: str
    severity: Severity
    message: str
    remediation: str
    target: str
    waiver: Waiver | None = None

    @property
    def rule(self) -> Rule:
        """The catalogue entry."""
        return RULES[self.rule_id]

    @property
    def counts(self) -> bool:
        """Whether the finding is active: not waived and not switched off."""
        return self.waiver is None and self.severity > Severity.OFF

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "rule": self.rule_id,
            "severity": str(self.severity),
            "clause": self.rule.clause,
            "message": self.message,
            "remediation": self.remediation,
            "target": self.target,
            "waived": self.waiver.to_dict() if self.waiver else None,
        }


@dataclass(frozen=True)
class Report:
    """The result of a check: findings plus what produced them.

    Checks return a report and never raise for a non-compliant subject; call
    :meth:`raise_for_violations` to turn error findings into an exception.

    Attributes:
        kind: ``"context"``, ``"cipher_string"``, ``"certificate"`` or ``"server"``.
        subject: what was checked (host, file name, context description).
        policy: the policy's name.
        guideline_version: the policy's Mozilla guideline version.
        verifier: what performed path validation (certificate checks), if any.
        findings: every finding, waived ones included.
        details: non-secret facts gathered during the check (offered suites...).
    """

    kind: str
    subject: str
    policy: str
    guideline_version: str
    findings: tuple[Finding, ...]
    verifier: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> tuple[Finding, ...]:
        """Findings that count (not waived, not switched off)."""
        return tuple(f for f in self.findings if f.counts)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Active findings of severity ERROR."""
        return tuple(f for f in self.active if f.severity >= Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Active findings of severity WARNING."""
        return tuple(f for f in self.active if f.severity == Severity.WARNING)

    @property
    def ok(self) -> bool:
        """No active ERROR finding."""
        return not self.errors

    def rule_ids(self, *, active_only: bool = True) -> set[str]:
        """The ids of the rules that fired."""
        return {f.rule_id for f in (self.active if active_only else self.findings)}

    def raise_for_violations(self, *, min_severity: Severity = Severity.ERROR) -> None:
        """Raise if any active finding is at or above *min_severity*.

        Raises:
            PolicyViolationError: listing the rule ids and messages.
        """
        bad = [f for f in self.active if f.severity >= min_severity]
        if bad:
            listing = "; ".join(f"{f.rule_id}: {f.message}" for f in bad)
            raise PolicyViolationError(f"{self.subject} violates policy {self.policy}: {listing}")

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (schema ``styku-tls-report/1``)."""
        return {
            "schema": REPORT_SCHEMA,
            "kind": self.kind,
            "subject": self.subject,
            "policy": self.policy,
            "guideline_version": self.guideline_version,
            "verifier": self.verifier,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "details": dict(self.details),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    def to_text(self) -> str:
        """A readable table: one line per finding, then a verdict."""
        lines = [
            f"{self.kind} check of {self.subject}",
            f"policy: {self.policy} (Mozilla guideline {self.guideline_version})",
        ]
        if self.verifier:
            lines.append(f"verifier: {self.verifier}")
        if not self.findings:
            lines.append("no findings")
        for f in sorted(self.findings, key=lambda f: (-int(f.severity), f.rule_id)):
            tag = "WAIVED" if f.waiver else str(f.severity).upper()
            lines.append(f"  [{tag:7}] {f.rule_id:17} {f.message}")
            lines.append(f"  {'':9} {'':17} fix: {f.remediation}")
            if f.waiver:
                lines.append(f"  {'':9} {'':17} waiver until {f.waiver.expires}: {f.waiver.reason}")
        verdict = "PASS" if self.ok else f"FAIL ({len(self.errors)} error(s))"
        lines.append(f"result: {verdict}, {len(self.warnings)} warning(s)")
        return "\n".join(lines)


class FindingCollector:
    """Accumulates findings for one subject under one policy (internal helper)."""

    def __init__(self, policy: Policy, target: str, *, today: date | None = None) -> None:
        self.policy = policy
        self.target = target
        self.today = today if today is not None else datetime.now(UTC).date()
        self.findings: list[Finding] = []

    def add(self, rule_id: str, message: str) -> None:
        """Record a finding for *rule_id* unless the policy switched the rule off."""
        severity = self.policy.severity(rule_id)
        if severity == Severity.OFF:
            return
        self.findings.append(
            Finding(
                rule_id=rule_id,
                severity=severity,
                message=message,
                remediation=RULES[rule_id].remediation,
                target=self.target,
                waiver=self.policy.waiver_for(rule_id, self.target, today=self.today),
            )
        )

    def report(
        self,
        kind: str,
        *,
        subject: str | None = None,
        verifier: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Report:
        """Freeze the findings into a :class:`Report`."""
        return Report(
            kind=kind,
            subject=subject if subject is not None else self.target,
            policy=self.policy.name,
            guideline_version=self.policy.guideline_version,
            findings=tuple(self.findings),
            verifier=verifier,
            details=dict(details or {}),
        )
