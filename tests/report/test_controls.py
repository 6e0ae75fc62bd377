"""Every control's verdict and evidence against a real environment (tests/report/conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from styku_crypto._cli import main
from styku_crypto.report import (
    EvidenceReport,
    Status,
    build_report,
    load_config,
    run_report,
    to_html,
    to_json,
    to_markdown,
)
from styku_crypto.report._gather import gather
from tests._support import leaks
from tests.report.conftest import Env


def _run(env: Env, tmp_path: Path, text: str, **kw: object) -> EvidenceReport:
    return run_report(load_config(env.write(tmp_path, text)), timeout=30, **kw)  # type: ignore[arg-type]


def _status(report: EvidenceReport) -> dict[str, str]:
    return {c.id: c.status.value for c in report.controls}


def _control(report: EvidenceReport, cid: str):  # type: ignore[no-untyped-def]
    return next(c for c in report.controls if c.id == cid)


@pytest.fixture(scope="module")
def baseline(env: Env, tmp_path_factory: pytest.TempPathFactory) -> EvidenceReport:
    """The healthy configuration: one compliant endpoint, everything fresh."""
    return _run(env, tmp_path_factory.mktemp("baseline"), env.config())


def test_healthy_environment_passes_every_control(baseline: EvidenceReport) -> None:
    """Compliant endpoint, clean store, fresh backups and drill, verified log: all pass, exit 0."""
    assert _status(baseline) == {
        "TX-HTTPS": "pass",
        "TX-CERT": "pass",
        "AR-LAYERED": "pass",
        "AR-ROTATION": "pass",
        "AR-PASSWORDS": "pass",
        "IM-LOG-INTEGRITY": "pass",
        "IM-OPEN-INCIDENTS": "pass",
        "IM-NOTIFICATION": "pass",
        "IM-DETECTION": "pass",
        "AV-BACKUP": "pass",
        "AV-DRILL": "pass",
        "AV-REPLICA": "not-applicable",
    }
    assert baseline.exit_code == 0


def test_evidence_carries_numbers_sources_and_times(baseline: EvidenceReport, env: Env) -> None:
    """Each passing control shows what it measured, where it came from and when."""
    ev = {c.id: {e.label: e for e in c.evidence} for c in baseline.controls}
    assert ev["TX-HTTPS"][f"{env.good} grade"].value in ("A", "A+")
    assert ev["AR-LAYERED"]["live tenants"].value == 2
    assert ev["AR-LAYERED"]["fewest roots wrapping a key"].value == 2
    assert str(env.store) in ev["AR-LAYERED"]["live tenants"].source
    assert ev["AR-ROTATION"]["current keys"].value == 4
    assert ev["AR-PASSWORDS"]["hashes sampled"].value == 3
    assert ev["AR-PASSWORDS"]["needing an upgrade"].value == 1
    assert ev["IM-LOG-INTEGRITY"]["head record checked"].value is True
    assert ev["IM-NOTIFICATION"]["notification duties"].value == 1
    assert ev["AV-DRILL"]["latest drill passed"].value is True
    assert ev["AV-DRILL"]["canaries decrypted"].value > 0
    assert {
        e.value
        for e in ev["IM-DETECTION"].values()
        if e.label.startswith("rule ") and "opens" not in e.label
    } == {"fired"}
    for c in baseline.controls:
        for e in c.evidence:
            assert e.source
            assert abs((baseline.generated_at - e.at).total_seconds()) < 120


def test_weak_endpoint_fails_tx_https_with_the_rules(env: Env, tmp_path: Path) -> None:
    """The non-compliant endpoint fails TX-HTTPS naming it and the broken rules; exit 1."""
    tls = f'[tls]\nendpoints = ["{env.good}", "{env.weak}"]\nca_file = "{env.ca}"\n'
    report = _run(env, tmp_path, env.config(tls=tls))
    c = _control(report, "TX-HTTPS")
    assert c.status is Status.FAIL
    assert [p.subject for p in c.problems] == [env.weak]
    assert "TLS-PROTO-001" in c.problems[0].message
    assert report.exit_code == 1
    grades = {e["target"]: e for e in report.charts["endpoints"]}
    assert grades[env.good]["compliant"]
    assert not grades[env.weak]["compliant"]


def test_certificate_horizon(env: Env, tmp_path: Path) -> None:
    """TX-CERT fails when the certificate expires inside the horizon (the bed's lives 80 days)."""
    tls = f'[tls]\nendpoints = ["{env.good}"]\nca_file = "{env.ca}"\ncert_horizon_days = 100\n'
    c = _control(_run(env, tmp_path, env.config(tls=tls)), "TX-CERT")
    assert c.status is Status.FAIL
    assert "horizon 100" in c.problems[0].message


def test_unreachable_endpoint_is_not_gathered_exit_3(env: Env, tmp_path: Path) -> None:
    """A refused port: TX-HTTPS and TX-CERT not-gathered with the reason; report written, exit 3."""
    tls = f'[tls]\nendpoints = ["{env.good}", "{env.refused}"]\nca_file = "{env.ca}"\n'
    config = env.write(tmp_path, env.config(tls=tls))
    out = tmp_path / "r.json"
    assert main(["report", "--config", str(config), "--format", "json", "--output", str(out)]) == 3
    doc = json.loads(out.read_text())
    c = {x["id"]: x for x in doc["controls"]}
    assert c["TX-HTTPS"]["status"] == "not-gathered"
    assert env.refused in c["TX-HTTPS"]["reason"]
    assert c["TX-CERT"]["status"] == "not-gathered"
    assert c["AR-LAYERED"]["status"] == "pass"  # the rest is still judged
    assert doc["exit_code"] == 3


def test_hung_endpoint_is_bounded_by_timeout(env: Env, tmp_path: Path) -> None:
    """An endpoint that accepts and never answers cannot hold the report past 2x --timeout."""
    tls = f'[tls]\nendpoints = ["{env.silent}"]\nca_file = "{env.ca}"\n'
    config = load_config(env.write(tmp_path, env.config(tls=tls)))
    t0 = time.monotonic()
    sources = gather(config, timeout=2.0)
    assert time.monotonic() - t0 < 4.0
    assert not sources["tls"].gathered or not sources["tls"].data.audit.complete
    report = build_report(config, sources)
    assert _control(report, "TX-HTTPS").status is Status.NOT_GATHERED


def test_layered_needs_enough_roots_and_waiver_applies(env: Env, tmp_path: Path) -> None:
    """min_roots above the wraps fails AR-LAYERED per tenant; subject waivers waive one, or all."""
    text = env.config().replace("roots = [", "min_roots = 3\nroots = [")
    c = _control(_run(env, tmp_path, text), "AR-LAYERED")
    assert c.status is Status.FAIL
    assert {p.subject for p in c.problems} == {"acme", "globex"}
    one = (
        '[[waivers]]\ncontrol = "AR-LAYERED"\nsubject = "acme"\n'
        'reason = "migration"\nexpires = 2999-01-01\n'
    )
    c = _control(_run(env, tmp_path, text + one), "AR-LAYERED")
    assert c.status is Status.FAIL
    assert [p.subject for p in c.problems if p.waived_by is None] == ["globex"]
    both = one + one.replace('"acme"', '"globex"')
    assert _control(_run(env, tmp_path, text + both), "AR-LAYERED").status is Status.WAIVED


def test_expired_waiver_waives_nothing(env: Env, tmp_path: Path) -> None:
    """A waiver past its expiry day leaves the control failing and is shown as expired."""
    text = env.config().replace("roots = [", "min_roots = 3\nroots = [")
    text += '[[waivers]]\ncontrol = "AR-LAYERED"\nreason = "old"\nexpires = 2020-01-01\n'
    report = _run(env, tmp_path, text)
    c = _control(report, "AR-LAYERED")
    assert c.status is Status.FAIL
    assert json.loads(to_json(report))["controls"][2]["waivers"][0]["expired"] is True
    assert "EXPIRED" in to_html(report)


def test_waiver_never_hides_missing_evidence(env: Env, tmp_path: Path) -> None:
    """A waiver on an unreachable endpoint's control leaves it not-gathered."""
    tls = f'[tls]\nendpoints = ["{env.refused}"]\n'
    extra = '[[waivers]]\ncontrol = "TX-HTTPS"\nreason = "x"\nexpires = 2999-01-01\n'
    assert (
        _control(_run(env, tmp_path, env.config(extra, tls=tls)), "TX-HTTPS").status
        is Status.NOT_GATHERED
    )


def test_rotation_backup_drill_and_open_incident_age(env: Env, tmp_path: Path) -> None:
    """Facts judged 400 days later fail AR-ROTATION, AV-BACKUP, AV-DRILL, IM-OPEN-INCIDENTS."""
    config = load_config(env.write(tmp_path, env.config()))
    sources = gather(config, timeout=30)
    later = timedelta(days=400)
    shifted = {}
    for name, src in sources.items():
        data = src.data
        if data is not None and hasattr(data, "at"):
            data = dataclasses.replace(data, at=data.at + later)
        shifted[name] = dataclasses.replace(src, data=data)
    report = build_report(config, shifted)
    status = _status(report)
    for cid in ("AR-ROTATION", "AV-BACKUP", "AV-DRILL", "IM-OPEN-INCIDENTS"):
        assert status[cid] == "fail", cid
    assert "limit 365" in _control(report, "AR-ROTATION").problems[0].message
    assert status["AR-LAYERED"] == "pass"


def test_overdue_notification_fails(env: Env, tmp_path: Path) -> None:
    """A confirmed incident whose 72 h notice window passed unnotified fails IM-NOTIFICATION."""
    inc = f'[incidents]\nlog = "{env.overdue_log}"\nname = "overdue"\n'
    c = _control(_run(env, tmp_path, env.config(incidents=inc)), "IM-NOTIFICATION")
    assert c.status is Status.FAIL
    assert c.problems[0].subject == "INC-000001/acme"


def test_tampered_log_fails_integrity_and_blocks_the_rest(env: Env, tmp_path: Path) -> None:
    """An edited log entry fails IM-LOG-INTEGRITY; the controls reading the log are not-gathered."""
    inc = f'[incidents]\nlog = "{env.tampered_log}"\n'
    report = _run(env, tmp_path, env.config(incidents=inc))
    status = _status(report)
    assert status["IM-LOG-INTEGRITY"] == "fail"
    assert status["IM-OPEN-INCIDENTS"] == status["IM-NOTIFICATION"] == "not-gathered"


def test_password_profile_and_sample_share(env: Env, tmp_path: Path) -> None:
    """A profile below the policy fails; so does a sample share above max_upgrade_share."""
    weak = env.config().replace('profile = "RFC_9106_LOW_MEMORY"', 'profile = "OWASP_M7168_T5"')
    c = _control(_run(env, tmp_path, weak), "AR-PASSWORDS")
    assert c.status is Status.FAIL
    assert "below the policy" in c.problems[0].message
    strict = env.config().replace("max_upgrade_share = 0.5", "max_upgrade_share = 0.1")
    c = _control(_run(env, tmp_path, strict), "AR-PASSWORDS")
    assert c.status is Status.FAIL
    assert "33.3% need an upgrade" in c.problems[0].message


def test_corrupt_backup_fails_av_backup(env: Env, tmp_path: Path) -> None:
    """A destination whose newest backup fails its MAC check fails AV-BACKUP naming it."""
    bad = tmp_path / "bad-dest"
    newest = sorted(p for p in env.dests[0].iterdir() if p.is_dir())[-1]
    shutil.copytree(newest, bad / newest.name)
    manifest = bad / newest.name / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["key_versions"] += 1  # a planted or corrupted manifest: its MAC no longer verifies
    manifest.write_text(json.dumps(doc))
    text = env.config().replace(
        json.dumps([str(d) for d in env.dests]), json.dumps([str(env.dests[0]), str(bad)])
    )
    c = _control(_run(env, tmp_path, text), "AV-BACKUP")
    assert c.status is Status.FAIL
    assert [p.subject for p in c.problems] == [str(bad)]


def test_report_never_contains_a_secret(env: Env, tmp_path: Path) -> None:
    """HTML, JSON and Markdown hold no root key, TLS private key, password or password hash."""
    tls = f'[tls]\nendpoints = ["{env.good}", "{env.weak}"]\nca_file = "{env.ca}"\n'
    report = _run(env, tmp_path, env.config(tls=tls))
    for name, text in (
        ("html", to_html(report)),
        ("json", to_json(report)),
        ("markdown", to_markdown(report)),
    ):
        leaks.scan_text(f"report {name}", text)
        for secret in env.secrets:
            forms = [secret.hex(), base64.b64encode(secret).decode()]
            with contextlib.suppress(UnicodeDecodeError):
                forms += [
                    line
                    for line in secret.decode().splitlines()
                    if len(line) >= 16 and not line.startswith("-----")
                ]
            for form in forms:
                assert form not in text, name
    assert "$argon2" not in to_json(report)


def test_demo_writes_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--demo builds its world, writes report.html, exits 1 (weak endpoint fails), cleans up."""
    out = tmp_path / "report.html"
    assert main(["report", "--demo", "--output", str(out)]) == 1
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 3
    text = capsys.readouterr().out
    assert "TX-HTTPS           fail" in text
    assert "TX-CERT            waived" in text
    assert list(tmp_path.iterdir()) == [out]


def test_detection_with_every_rule_disabled_fails(env: Env, tmp_path: Path) -> None:
    """A detector file that disables every rule leaves nothing to detect with: IM-DETECTION fails,
    naming the file; the report exits 1 instead of showing detection as in place."""
    detectors = tmp_path / "detectors.toml"
    detectors.write_text(
        "[detectors.decrypt_failures]\n"
        'events = ["envelope.decrypt.failed"]\nthreshold = 20\nwindow_seconds = 60\n'
        "enabled = false\n"
    )
    inc = f'[incidents]\nlog = "{env.log}"\ndetectors = "{detectors}"\n'
    report = _run(env, tmp_path, env.config(incidents=inc))
    c = _control(report, "IM-DETECTION")
    assert c.status is Status.FAIL
    assert [(p.subject, p.message) for p in c.problems] == [
        (str(detectors), "no detector rules configured")
    ]
    assert report.exit_code == 1


def test_detection_rule_that_never_fires_fails(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A detector whose rule stays silent at its threshold (here: one that drops every event)
    fails IM-DETECTION naming the rule, while the other rules still show as fired."""
    from styku_crypto.events import AnomalyDetector

    real = AnomalyDetector.observe

    def deaf_to_decrypt_failures(self: AnomalyDetector, event: object) -> object:
        if isinstance(event, dict) and event.get("event") == "envelope.decrypt.failed":
            return []
        return real(self, event)  # type: ignore[arg-type]

    monkeypatch.setattr(AnomalyDetector, "observe", deaf_to_decrypt_failures)
    report = _run(env, tmp_path, env.config())
    c = _control(report, "IM-DETECTION")
    assert c.status is Status.FAIL
    silent = [p.subject for p in c.problems]
    assert silent
    assert all("did not fire" in p.message for p in c.problems)
    values = {e.label: e.value for e in c.evidence if e.label.startswith("rule ")}
    assert {values[f"rule {name}"] for name in silent} == {"silent"}
    assert "fired" in values.values()


def test_starttls_endpoints_are_audited_and_graded(env: Env, tmp_path: Path) -> None:
    """`starttls` endpoints (real aiosmtpd servers speaking SMTP STARTTLS) go through the same
    audit: the compliant one passes TX-HTTPS, the weak one fails it by name with the rule."""
    from tests.tls.audit import _daemons

    good = _daemons.smtp("report-smtp-good", env.certs, weak=False)
    weak = _daemons.smtp("report-smtp-weak", env.certs, weak=True)
    try:
        good_url = f"smtp://127.0.0.1:{good.port}"
        weak_url = f"smtp://127.0.0.1:{weak.port}"
        tls = f'[tls]\nstarttls = ["{good_url}"]\nca_file = "{env.ca}"\n'
        passing = _run(env, tmp_path, env.config(tls=tls))
        assert _control(passing, "TX-HTTPS").status is Status.PASS
        assert _control(passing, "TX-CERT").status is Status.PASS
        tls = f'[tls]\nstarttls = ["{good_url}", "{weak_url}"]\nca_file = "{env.ca}"\n'
        failing = _run(env, tmp_path, env.config(tls=tls))
        c = _control(failing, "TX-HTTPS")
        assert c.status is Status.FAIL
        assert len(c.problems) == 1
        assert str(weak.port) in c.problems[0].subject
        assert str(good.port) not in c.problems[0].subject
        assert "TLS-" in c.problems[0].message
        assert failing.exit_code == 1
    finally:
        good.stop()
        weak.stop()
