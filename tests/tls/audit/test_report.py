"""JSON (styku-tls-audit/1), SARIF 2.1.0 and text renderings of the bed report."""

from __future__ import annotations

import json

from styku_crypto.tls._rules import RULES
from styku_crypto.tls.audit import JSON_SCHEMA, to_json, to_sarif, to_text
from tests._support.leaks import assert_no_secret_in
from tests.tls.audit.conftest import Bed

PROTOCOL_NAMES = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


def test_json_document_schema_and_verdict(bed: Bed) -> None:
    """The JSON carries its schema id, the run verdict and one entry per target in order."""
    doc = json.loads(to_json(bed.report))
    assert doc["schema"] == JSON_SCHEMA == "styku-tls-audit/1"
    assert doc["policy"] == "mozilla-6.0-intermediate"
    assert doc["verdict"] == {"compliant": False, "complete": False, "exit_code": 3}
    assert [t["target"] for t in doc["targets"]] == [t.target.label for t in bed.report.targets]
    assert_no_secret_in("audit JSON", to_json(bed.report))


def test_json_target_fields(bed: Bed) -> None:
    """Protocols use TLSv1.x names, suites IANA names, and verdict/grade/findings are inside."""
    doc = json.loads(to_json(bed.report))
    by_label = {t["target"]: t for t in doc["targets"]}
    inter = by_label[bed.servers["intermediate"].target]
    assert list(inter["protocols"]) == PROTOCOL_NAMES
    assert inter["protocols"]["TLSv1.3"] is True
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in inter["cipher_suites"]["TLSv1.2"]
    assert inter["verdict"]["compliant"] is True
    assert inter["verdict"]["grade"] == "A+"
    assert inter["hsts"]["max_age"] == 63072000
    assert inter["features"]["fallback_scsv"] is True
    assert inter["certificates"][0]["san"] == ["localhost", "127.0.0.1"]
    assert inter["certificates"][0]["days_left"] > 70
    assert "caller-supplied" in inter["certificate_verifier"]
    weak = by_label[bed.servers["weak"].target]
    assert weak["dh_bits"] == 1024
    assert {"rule", "severity", "message", "clause", "remediation", "waived"} == set(
        weak["findings"][0]
    )
    silent = by_label[bed.servers["silent"].target]
    assert silent["verdict"]["complete"] is False
    assert "no complete answer" in silent["verdict"]["error"]
    assert silent["protocols"]["TLSv1.2"] is None


def test_sarif_log_structure(bed: Bed) -> None:
    """SARIF 2.1.0: one run, rules for every result, levels mapped, incomplete targets notified."""
    log = json.loads(to_sarif(bed.report))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert rule_ids <= set(RULES)
    results = run["results"]
    assert {r["ruleId"] for r in results} == rule_ids
    assert {r["level"] for r in results} <= {"error", "warning", "note"}
    assert len(results) == sum(len(t.findings) for t in bed.report.targets)
    locations = {r["locations"][0]["logicalLocations"][0]["name"] for r in results}
    assert bed.servers["weak"].target in locations
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 3
    assert len(invocation["toolExecutionNotifications"]) == 7


def test_text_report_has_a_block_per_target_and_summary(bed: Bed) -> None:
    """The text report names every target, its verdict and grade, and ends with a summary."""
    text = to_text(bed.report)
    for server in bed.servers.values():
        assert f"== {server.target} " in text
    assert "COMPLIANT against mozilla-6.0-intermediate   grade A+" in text
    assert "summary: 12 target(s), 1 compliant, 4 non-compliant, 7 incomplete" in text
    assert_no_secret_in("audit text", text)


def test_public_api_is_documented() -> None:
    """Every public name of styku_crypto.tls.audit is sorted and documented in its docs page."""
    from pathlib import Path

    import styku_crypto.tls.audit as api

    docs = (Path(__file__).parents[3] / "docs" / "tls-audit.md").read_text()
    assert api.__all__ == sorted(api.__all__, key=lambda n: (not n.isupper(), n))
    for name in api.__all__:
        assert f"`{name}" in docs, name
