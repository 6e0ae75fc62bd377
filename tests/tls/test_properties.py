"""Hypothesis properties of the TLS data model, registries and waivers."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from styku_crypto import tls
from styku_crypto.exceptions import InvalidPolicyError
from styku_crypto.tls import profiles

suites = st.sampled_from(tls.CIPHER_SUITES)
groups = st.sampled_from(tls.NAMED_GROUPS)
policies = st.sampled_from(profiles.ALL)


@given(suites)
def test_cipher_lookup_round_trips(suite: tls.CipherSuite) -> None:
    """Every suite is found again by code, IANA name and OpenSSL name (any case)."""
    assert tls.cipher_by_code(suite.code) == suite
    assert tls.cipher_by_name(suite.iana.lower()) == suite
    if suite.openssl is not None:
        assert tls.cipher_by_name(suite.openssl) == suite


@given(suites)
def test_insecure_suites_are_never_in_a_profile(suite: tls.CipherSuite) -> None:
    """No shipped profile allows an insecure suite except 5.7/5.8 OLD's 3DES."""
    for policy in profiles.ALL:
        if suite.iana in policy.tls12_ciphers and suite.insecure:
            assert policy.profile == "old"
            assert "3DES" in suite.iana


@given(groups)
def test_group_lookup_round_trips(group: tls.NamedGroup) -> None:
    """Every group is found again by code and by each of its spellings."""
    assert tls.group_by_code(group.code) == group
    for spelling in (group.name, group.openssl, *group.aliases):
        assert tls.group_by_name(spelling.upper()) == group


@given(policies)
def test_policy_dict_round_trip(policy: tls.Policy) -> None:
    """to_dict / from_dict is the identity on every profile."""
    assert tls.Policy.from_dict(policy.to_dict()) == policy


@given(
    st.integers(min_value=-400, max_value=400),
    st.sampled_from(["a.legacy.example", "legacy.example", "b.other.example"]),
)
def test_waiver_applies_exactly_until_expiry_and_only_to_matching_targets(
    days: int, target: str
) -> None:
    """A waiver covers its rule on matching targets through its expiry day, never after."""
    expires = date(2027, 6, 30)
    waiver = tls.Waiver("CERT-LIFETIME-001", "*.legacy.example", "test", expires)
    today = expires + timedelta(days=days)
    expected = days <= 0 and target == "a.legacy.example"
    assert waiver.applies("CERT-LIFETIME-001", target, today=today) is expected
    assert not waiver.applies("CERT-KEY-002", target, today=today)


@given(st.text(min_size=0, max_size=200))
def test_policy_parser_never_crashes(text: str) -> None:
    """Arbitrary text yields a policy or InvalidPolicyError, never another exception."""
    for fmt in ("toml", "json"):
        outcome: object
        try:
            outcome = tls.parse_policy(text, fmt=fmt)
        except InvalidPolicyError as exc:
            outcome = exc
        assert isinstance(outcome, tls.Policy | InvalidPolicyError)
        assert str(outcome)


def test_rule_ids_are_stable_and_documented() -> None:
    """Rule ids follow AREA-TOPIC-NNN, name a Policy field (or certificate) and are documented."""
    fields = set(tls.Policy.__dataclass_fields__)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tls.md").read_text()
    for rule_id, rule in tls.RULES.items():
        assert re.fullmatch(r"(TLS|CERT|AUDIT)-[A-Z0-9]+-\d{3}", rule_id)
        assert rule.clause in fields or rule.clause == "certificate"
        prefix = rule_id.rsplit("-", 1)[0]
        assert prefix in docs or rule_id in docs or rule_id.startswith("AUDIT-"), rule_id


def test_every_public_name_is_documented() -> None:
    """Each name in styku_crypto.tls.__all__ appears in the TLS guide."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tls.md").read_text()
    missing = [name for name in tls.__all__ if f"`{name}`" not in docs]
    assert not missing, missing
