"""Report renderers: readable text, versioned JSON, SARIF 2.1.0.

The JSON schema is ``styku-tls-audit/1`` (documented in ``docs/tls-audit.md``);
fields are only ever added within a schema version. Suites use IANA names,
protocols ``SSLv2``..``TLSv1.3``, and the verdict is part of the document.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from styku_crypto.__about__ import __version__
from styku_crypto.tls.audit._model import PROTOCOLS, AuditReport, TargetReport
from styku_crypto.tls.audit._rules import lookup

__all__ = ["JSON_SCHEMA", "to_json", "to_json_dict", "to_sarif", "to_text"]

#: The schema id of :func:`to_json` documents.
JSON_SCHEMA = "styku-tls-audit/1"
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _cert_summary(der: bytes, now: datetime) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {"sha256": hashlib.sha256(der).hexdigest(), "error": "unparseable certificate"}
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_text = f"RSA {key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_text = f"EC {key.curve.name}"
    else:
        key_text = type(key).__name__.removeprefix("_").replace("PublicKey", "")
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = [str(v) for v in san_ext.get_values_for_type(x509.DNSName)] + [
            str(v) for v in san_ext.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        san = []
    not_after = cert.not_valid_after_utc
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": round((not_after - now).total_seconds() / 86400, 1),
        "san": san,
        "key": key_text,
        "signature": cert.signature_algorithm_oid._name,
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def _target_dict(report: TargetReport, now: datetime) -> dict[str, Any]:
    f = report.facts
    return {
        "target": report.target.label,
        "host": report.target.host,
        "port": report.target.port,
        "protocol": report.target.protocol,
        "sni": report.target.server_name,
        "verdict": {
            "compliant": report.compliant,
            "complete": report.complete,
            "grade": report.grade,
            "grade_caps": list(report.grade_caps),
            "error": report.error,
        },
        "protocols": {p: f.protocols.get(p) for p in PROTOCOLS},
        "cipher_suites": {p: list(v) for p, v in f.suites.items()},
        "server_preference": dict(f.server_preference),
        "groups": {g: list(v) for g, v in f.groups.items()},
        "dh_bits": f.dh_bits,
        "dh_group": f.dh_group,
        "ecdh_bits": f.ecdh_bits,
        "features": {
            "extended_master_secret": f.ems,
            "secure_renegotiation": f.secure_renegotiation,
            "client_renegotiation": f.client_renegotiation,
            "compression": f.compression,
            "fallback_scsv": f.fallback_scsv,
            "ocsp_stapling": f.ocsp_stapling,
            "session_resumption": f.session_resumption,
            "session_tickets": f.session_tickets,
            "alpn": list(f.alpn),
        },
        "vulnerabilities": {
            "heartbleed": f.heartbleed,
            "ccs_injection": f.ccs_injection,
            "robot": f.robot,
        },
        "hsts": {"header": f.hsts, "max_age": f.hsts_max_age},
        "negotiated": {"protocol": f.negotiated_protocol, "suite": f.negotiated_suite},
        "certificates": [_cert_summary(der, now) for der in f.certificates],
        "certificate_verifier": f.certificate_verifier,
        "findings": [
            {
                "rule": x.rule,
                "severity": x.severity,
                "message": x.message,
                "clause": x.clause,
                "remediation": x.remediation,
                "waived": x.waived,
            }
            for x in report.findings
        ],
        "not_tested": dict(sorted(f.not_tested.items())),
        "duration_s": round(report.duration, 3),
    }


def to_json_dict(report: AuditReport, *, now: datetime | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict (schema :data:`JSON_SCHEMA`)."""
    when = now or datetime.now(UTC)
    return {
        "schema": JSON_SCHEMA,
        "tool": {"name": "styku-crypto", "version": __version__},
        "policy": report.policy,
        "started": report.started.isoformat(),
        "duration_s": round(report.duration, 3),
        "verdict": {
            "compliant": report.compliant,
            "complete": report.complete,
            "exit_code": report.exit_code,
        },
        "targets": [_target_dict(t, when) for t in report.targets],
    }


def to_json(report: AuditReport, *, now: datetime | None = None) -> str:
    """The report as a JSON document (schema :data:`JSON_SCHEMA`)."""
    return json.dumps(to_json_dict(report, now=now), indent=2)


def to_sarif(report: AuditReport) -> str:
    """The findings as a SARIF 2.1.0 log (one run, one result per finding)."""
    rule_ids = sorted({f.rule for t in report.targets for f in t.findings})
    rules = []
    for rule_id in rule_ids:
        try:
            rule = lookup(rule_id)
        except KeyError:
            continue
        rules.append(
            {
                "id": rule.id,
                "name": rule.id.replace("-", ""),
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": f"{rule.title} (policy clause: {rule.clause})"},
                "help": {"text": rule.remediation},
                "defaultConfiguration": {"level": _SARIF_LEVEL.get(str(rule.severity), "note")},
            }
        )
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for target in report.targets:
        location = {
            "logicalLocations": [
                {
                    "name": target.target.label,
                    "fullyQualifiedName": target.target.label,
                    "kind": "resource",
                }
            ]
        }
        for finding in target.findings:
            result: dict[str, Any] = {
                "ruleId": finding.rule,
                "level": _SARIF_LEVEL.get(finding.severity, "note"),
                "message": {"text": f"{target.target.label}: {finding.message}"},
                "locations": [location],
                "properties": {"clause": finding.clause, "remediation": finding.remediation},
            }
            if finding.waived:
                result["suppressions"] = [{"kind": "external", "justification": finding.message}]
            results.append(result)
        if target.error:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"{target.target.label}: {target.error}"},
                    "locations": [location],
                }
            )
    log = {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "styku-crypto tls audit",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": report.complete,
                        "exitCode": report.exit_code,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "properties": {"policy": report.policy},
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)


def _yes(value: bool | None) -> str:
    return "not tested" if value is None else ("yes" if value else "no")


def _finding_lines(t: TargetReport) -> list[str]:
    if not t.findings:
        return []
    lines = ["  findings:"]
    for x in t.findings:
        mark = " (waived)" if x.waived else ""
        lines.append(f"    [{x.severity.upper():7}] {x.rule}{mark}: {x.message}")
        lines.append(f"              clause: {x.clause}; fix: {x.remediation}")
    return lines


def to_text(report: AuditReport) -> str:
    """A readable report: one block per target, then a summary."""
    lines: list[str] = []
    for t in report.targets:
        f = t.facts
        via = "" if t.target.protocol == "https" else f"{t.target.protocol}, "
        head = f"== {t.target.label} ({via}SNI {t.target.server_name}) =="
        lines.append(head)
        if t.error:
            lines.append(f"  ERROR: {t.error}")
        verdict = (
            "COMPLIANT" if t.compliant else ("INCOMPLETE" if not t.complete else "NON-COMPLIANT")
        )
        lines.append(f"  verdict   {verdict} against {report.policy}   grade {t.grade or '-'}")
        for cap in t.grade_caps:
            lines.append(f"            cap {cap}")
        protos = "  ".join(f"{p} {_yes(f.protocols.get(p))}" for p in PROTOCOLS)
        lines.append(f"  protocols {protos}")
        if t.error and not any(f.protocols.values()):
            lines.extend(_finding_lines(t))
            lines.append("")
            continue
        for proto, names in f.suites.items():
            pref = f.server_preference.get(proto)
            order = {True: "server order", False: "client order", None: "order not tested"}[pref]
            lines.append(f"  {proto} suites ({len(names)}, {order}):")
            lines.extend(f"      {n}" for n in names)
        if f.groups:
            groups = ", ".join(f"{g} ({'/'.join(v)})" for g, v in f.groups.items())
            lines.append(f"  groups    {groups}")
        if f.dh_bits is not None:
            known = f.dh_group not in {None, "custom"}
            dh = (
                f.dh_group if known else f"{f.dh_bits}-bit prime ({f.dh_group or 'not identified'})"
            )
            lines.append(f"  DH        {dh}")
        for label, value in (
            ("EMS", f.ems),
            ("secure renegotiation", f.secure_renegotiation),
            ("client renegotiation", f.client_renegotiation),
            ("compression", f.compression),
            ("fallback SCSV", f.fallback_scsv),
            ("OCSP stapling", f.ocsp_stapling),
            ("resumption", f.session_resumption),
            ("Heartbleed", f.heartbleed),
            ("CCS injection", f.ccs_injection),
            ("ROBOT", f.robot),
        ):
            lines.append(f"  {label:<22}{_yes(value)}")
        alpn = ", ".join(f.alpn) or (
            "not applicable"
            if f.not_tested.get("alpn", "").startswith("not applicable")
            else ("not tested" if "handshake" in f.not_tested else "none")
        )
        lines.append(f"  ALPN                  {alpn}")
        hsts_why = f.not_tested.get("hsts", "")
        hsts = (
            f.hsts
            if f.hsts is not None
            else "not applicable"
            if hsts_why.startswith("not applicable")
            else ("not tested" if hsts_why else "none")
        )
        lines.append(f"  HSTS                  {hsts}")
        if f.certificates:
            leaf = _cert_summary(f.certificates[0], datetime.now(UTC))
            lines.append(
                f"  certificate           {leaf.get('subject')}  {leaf.get('key')}  "
                f"{leaf.get('signature')}  expires {leaf.get('not_after')} "
                f"({leaf.get('days_left')} days)"
            )
            lines.append(f"  chain validated by    {f.certificate_verifier or 'not validated'}")
        lines.extend(_finding_lines(t))
        if f.not_tested:
            lines.append("  not tested:")
            lines.extend(f"    {k}: {v}" for k, v in sorted(f.not_tested.items()))
        lines.append("")
    ok = sum(1 for t in report.targets if t.compliant)
    bad = sum(1 for t in report.targets if t.complete and not t.compliant)
    inc = sum(1 for t in report.targets if not t.complete)
    lines.append(
        f"summary: {len(report.targets)} target(s), {ok} compliant, {bad} non-compliant, "
        f"{inc} incomplete; policy {report.policy}; {report.duration:.2f} s"
    )
    return "\n".join(lines) + "\n"
