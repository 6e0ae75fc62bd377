"""Policy data: shipped profiles, Mozilla files, our overlays, waivers and invalid files."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from styku_crypto import tls
from styku_crypto.exceptions import InvalidPolicyError
from styku_crypto.tls import profiles
from styku_crypto.tls._policy_file import generate_profile_data

MOZILLA = Path(__file__).resolve().parents[2] / ".." / "shared" / "policies" / "mozilla"


def test_shipped_profiles_equal_conversion_of_mozilla_files() -> None:
    """The package's profile data is exactly what the shared Mozilla 5.7/5.8/6.0 files say."""
    assert MOZILLA.is_dir(), f"missing {MOZILLA}"
    generated = {
        p["name"]: tls.Policy.from_dict(p) for p in generate_profile_data(MOZILLA)["profiles"]
    }
    shipped = {p.name: p for p in profiles.ALL}
    assert generated == shipped


@pytest.mark.parametrize(
    ("version", "profile"),
    [
        ("6.0", "modern"),
        ("6.0", "intermediate"),
        ("5.8", "old"),
        ("5.8", "intermediate"),
        ("5.7", "old"),
        ("5.7", "modern"),
    ],
)
def test_mozilla_files_load(version: str, profile: str) -> None:
    """Each Mozilla guideline file loads (6.0 lacks caddy/go keys) and records its version."""
    policy = tls.load_policy(MOZILLA / f"{version}.json", profile=profile)
    assert policy.guideline_version == version
    assert policy.profile == profile
    assert policy == profiles.by_name(f"{version}-{profile}")


def test_defaults_and_profile_facts() -> None:
    """Intermediate 6.0 is the default; its facts match the guideline."""
    p = profiles.DEFAULT
    assert p is profiles.MOZILLA_INTERMEDIATE
    assert p.guideline_version == "6.0"
    assert p.protocols == ("TLSv1.2", "TLSv1.3")
    assert p.hsts_min_age == 63072000
    assert p.groups[0] == "X25519MLKEM768"
    assert p.max_certificate_lifetime_days == 366
    assert profiles.MOZILLA_MODERN.certificate_types == ("ecdsa",)
    assert "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" in profiles.MOZILLA_5_7_INTERMEDIATE.tls12_ciphers
    assert "DES-CBC3-SHA" in profiles.MOZILLA_5_7_OLD.tls12_ciphers_openssl
    with pytest.raises(InvalidPolicyError):
        profiles.by_name("6.0-old")


def test_mozilla_missing_profile_and_key() -> None:
    """A Mozilla document without the profile or a required key fails naming them."""
    doc = json.loads((MOZILLA / "6.0.json").read_text())
    with pytest.raises(InvalidPolicyError, match="no 'old' configuration"):
        tls.parse_policy(json.dumps(doc), fmt="json", profile="old")
    del doc["configurations"]["intermediate"]["tls_versions"]
    text = json.dumps(doc, indent=2)
    with pytest.raises(InvalidPolicyError, match="tls_versions"):
        tls.parse_policy(text, fmt="json")


OVERLAY = """\
schema = "styku-tls-policy/1"
name = "styku-web"
extends = "intermediate"

[settings]
protocols = ["TLSv1.3"]
max_certificate_lifetime_days = 90
expiry_warn_days = 45

[rules]
"TLS-ORDER-001" = "off"
"CERT-EXPIRY-003" = "error"

[[waivers]]
rule = "CERT-LIFETIME-001"
target = "*.legacy.example"
reason = "appliance, replacement ordered"
expires = 2030-01-31

[[waivers]]
rule = "CERT-KEY-002"
target = "old.example"
reason = "expired waiver"
expires = 2020-01-01
"""


def test_toml_overlay_tightens_and_relaxes(tmp_path: Path) -> None:
    """An overlay extends intermediate, overrides fields and rule severities, and keeps waivers."""
    path = tmp_path / "policy.toml"
    path.write_text(OVERLAY)
    policy = tls.load_policy(path)
    assert policy.name == "styku-web"
    assert policy.profile == "custom"
    assert policy.guideline_version == "6.0"
    assert policy.protocols == ("TLSv1.3",)
    assert policy.max_certificate_lifetime_days == 90
    assert policy.severity("TLS-ORDER-001") is tls.Severity.OFF
    assert policy.severity("CERT-EXPIRY-003") is tls.Severity.ERROR
    assert policy.tls12_ciphers == profiles.MOZILLA_INTERMEDIATE.tls12_ciphers
    today = date(2026, 6, 1)
    assert policy.waiver_for("CERT-LIFETIME-001", "a.legacy.example", today=today) is not None
    assert (
        policy.waiver_for("CERT-LIFETIME-001", "a.legacy.example", today=date(2030, 2, 1)) is None
    )
    assert policy.waiver_for("CERT-KEY-002", "old.example", today=today) is None


def test_json_overlay_with_cipher_names(tmp_path: Path) -> None:
    """Our schema in JSON; OpenSSL cipher names are mapped to IANA names."""
    doc = {
        "schema": "styku-tls-policy/1",
        "name": "gcm-only",
        "extends": "mozilla-5.7-intermediate",
        "settings": {
            "tls12_ciphers": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
        },
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc, indent=2))
    policy = tls.load_policy(path)
    assert policy.guideline_version == "5.7"
    assert policy.tls12_ciphers == (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    )


INVALID_TOML = {
    "syntax": ('schema = "styku-tls-policy/1"\nname = "x"\nextends = intermediate\n', 3, "extends"),
    "unknown top key": ('schema = "styku-tls-policy/1"\nname = "x"\ncolour = "red"\n', 3, "colour"),
    "unknown setting": (
        'schema = "styku-tls-policy/1"\nname = "x"\n[settings]\nprotocolz = ["TLSv1.3"]\n',
        4,
        "protocolz",
    ),
    "bad protocol": (
        'schema = "styku-tls-policy/1"\nname = "x"\n[settings]\nprotocols = ["TLSv9"]\n',
        4,
        "protocols",
    ),
    "bad severity": (
        'schema = "styku-tls-policy/1"\nname = "x"\n[rules]\n"TLS-ORDER-001" = "loud"\n',
        4,
        "TLS-ORDER-001",
    ),
    "unknown rule": (
        'schema = "styku-tls-policy/1"\nname = "x"\n[rules]\n"TLS-NOPE-999" = "off"\n',
        4,
        "TLS-NOPE-999",
    ),
    "bad extends": (
        'schema = "styku-tls-policy/1"\nname = "x"\nextends = "ancient"\n',
        3,
        "extends",
    ),
    "waiver date": (
        'schema = "styku-tls-policy/1"\nname = "x"\n[[waivers]]\nrule = "CERT-KEY-002"\n'
        'target = "a"\nreason = "b"\nexpires = "someday"\n',
        7,
        "expires",
    ),
    "schema missing": ('name = "x"\n', None, "schema"),
}


@pytest.mark.parametrize("case", sorted(INVALID_TOML))
def test_invalid_toml_names_line_and_key(case: str) -> None:
    """Invalid policy files fail with InvalidPolicyError naming the line and the key."""
    text, line, key = INVALID_TOML[case]
    with pytest.raises(InvalidPolicyError) as info:
        tls.parse_policy(text, source="policy.toml")
    message = str(info.value)
    assert key in message
    if line is not None:
        assert f"policy.toml:{line}:" in message


BAD_JSON_SYNTAX = '{\n  "schema": "styku-tls-policy/1",\n  "name": "x",,\n}'
BAD_JSON_VALUE = """{
  "schema": "styku-tls-policy/1",
  "name": "x",
  "settings": {"hsts_min_age": -1}
}"""


def test_invalid_json_names_line_and_key() -> None:
    """A JSON syntax error names the line; a schema error names the key's line."""
    with pytest.raises(InvalidPolicyError, match=r"p\.json:3:"):
        tls.parse_policy(BAD_JSON_SYNTAX, fmt="json", source="p.json")
    text = BAD_JSON_VALUE
    with pytest.raises(InvalidPolicyError, match=r"p\.json:4: key 'hsts_min_age'"):
        tls.parse_policy(text, fmt="json", source="p.json")


def test_policy_validation_rejects_inconsistent_policies() -> None:
    """Policies with unknown suites, groups or inverted horizons are refused."""
    base = profiles.MOZILLA_INTERMEDIATE
    with pytest.raises(InvalidPolicyError):
        base.replace(groups=("curve-of-doom",))
    with pytest.raises(InvalidPolicyError):
        base.replace(expiry_fail_days=40)
    with pytest.raises(InvalidPolicyError):
        base.replace(tls13_suites=("ECDHE-RSA-AES128-GCM-SHA256",))
    with pytest.raises(InvalidPolicyError):
        tls.Waiver("NOPE-1", "x", "y", date(2030, 1, 1))


def test_missing_policy_file() -> None:
    """A path that is neither a file nor a profile name is an InvalidPolicyError."""
    with pytest.raises(InvalidPolicyError, match="no such policy file"):
        tls.load_policy("/nonexistent/policy.toml")
