"""``styku-crypto tls audit`` in-process: formats and every exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from styku_crypto._cli import main
from tests._support.leaks import assert_no_secret_in
from tests.tls.audit.conftest import Bed


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["tls", "audit", *argv])
    out, err = capsys.readouterr()
    assert_no_secret_in("tls audit output", out + err)
    return code, out, err


def test_compliant_target_exits_0_with_json(bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    """A compliant server exits 0 and the JSON verdict says so."""
    code, out, _ = _run(
        capsys,
        bed.servers["intermediate"].target,
        "--format",
        "json",
        "--ca-file",
        str(bed.certs.ca),
        "--timeout",
        "3",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["verdict"]["compliant"] is True
    assert doc["targets"][0]["verdict"]["grade"] == "A+"


def test_non_compliant_exits_1_with_sarif(bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    """The intermediate server fails modern: exit 1, SARIF lists TLS-PROTO-001."""
    code, out, _ = _run(
        capsys,
        bed.servers["intermediate"].target,
        "--policy",
        "modern",
        "--format",
        "sarif",
        "--ca-file",
        str(bed.certs.ca),
    )
    assert code == 1
    results = json.loads(out)["runs"][0]["results"]
    assert "TLS-PROTO-001" in {r["ruleId"] for r in results}


def test_unreachable_exits_3_even_with_compliant_targets(
    bed: Bed, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One dead target in a targets file makes the run exit 3; the text says why."""
    targets = tmp_path / "targets.txt"
    good, dead = bed.servers["intermediate"].target, bed.servers["refused"].target
    targets.write_text(f"# fleet\n{good}\n\n{dead}  # down\n")
    code, out, _ = _run(
        capsys, "--targets-file", str(targets), "--ca-file", str(bed.certs.ca), "--timeout", "2"
    )
    assert code == 3
    assert "cannot connect" in out
    assert "1 compliant, 0 non-compliant, 1 incomplete" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["127.0.0.1:0"],
        ["127.0.0.1:99999"],
        ["gopher://example.test"],
        ["smtp://example.test", "--starttls", "imap"],
        ["example.test", "--starttls", "nntp"],
        ["127.0.0.1:443", "--policy", "no-such-profile"],
        ["127.0.0.1:443", "--concurrency", "0"],
        ["127.0.0.1:443", "--timeout", "-1"],
        ["127.0.0.1:443", "--format", "xml"],
        ["--targets-file", "/nonexistent/targets.txt"],
        ["127.0.0.1:443", "--ca-file", "/nonexistent/ca.pem"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad targets, options, policy names and files exit 2 before any connection."""
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err


def test_invalid_policy_file_exits_2_naming_line_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A policy file with an unknown key exits 2 and points at the line."""
    policy = tmp_path / "p.toml"
    policy.write_text('schema = "styku-tls-policy/1"\nname = "x"\nbogus = 1\n')
    code, _, err = _run(capsys, "127.0.0.1:443", "--policy", str(policy))
    assert code == 2
    assert "p.toml:3" in err
    assert "bogus" in err


def test_policy_file_waiver_turns_exit_1_into_0(
    bed: Bed, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Waiving the only error on a target (groups) in a policy file makes it compliant."""
    target = bed.servers["tls13"].target
    policy = tmp_path / "acme.toml"
    policy.write_text(
        'schema = "styku-tls-policy/1"\nname = "acme"\nextends = "intermediate"\n'
        f'[[waivers]]\nrule = "TLS-GROUP-001"\ntarget = "{target}"\n'
        'reason = "OpenSSL defaults until the 2027 upgrade"\nexpires = 2099-01-01\n'
    )
    code, out, _ = _run(capsys, target, "--policy", str(policy), "--ca-file", str(bed.certs.ca))
    assert code == 0
    assert "(waived)" in out


def test_sni_option_names_the_certificate_checked(
    bed: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sni other.example makes the good certificate a name mismatch (CERT-HOST-001)."""
    target = bed.servers["intermediate"].target
    code, out, _ = _run(
        capsys, target, "--sni", "other.example", "--format", "json", "--ca-file", str(bed.certs.ca)
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["targets"][0]["sni"] == "other.example"
    assert "CERT-HOST-001" in {f["rule"] for f in doc["targets"][0]["findings"]}
