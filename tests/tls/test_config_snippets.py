"""``tls config`` snippets (issue 14): HSTS agrees with ``web check``; "old" is loudly labelled."""

from __future__ import annotations

import pytest

from styku_crypto._cli import main
from styku_crypto.tls import profiles
from styku_crypto.tls._config_gen import SERVERS, generate_config, hsts_value
from styku_crypto.web import HSTS
from styku_crypto.web._findings import evaluate_hsts

POLICIES = ["intermediate", "modern", "mozilla-5.7-old"]


@pytest.mark.parametrize("name", POLICIES)
def test_hsts_value_is_the_web_packages(name: str) -> None:
    """One HSTS policy: the snippets' header is exactly what ``web.HSTS`` sends by default."""
    policy = profiles.by_name(name)
    assert hsts_value(policy) == HSTS(max_age=policy.hsts_min_age).header_value()


@pytest.mark.parametrize("server", [s for s in SERVERS if s != "python"])
@pytest.mark.parametrize("name", POLICIES)
def test_snippet_hsts_passes_web_check(server: str, name: str) -> None:
    """The header each server snippet sets draws no WEB-HSTS finding (includeSubDomains on)."""
    policy = profiles.by_name(name)
    text = generate_config(policy, server)
    assert hsts_value(policy) in text
    assert evaluate_hsts([hsts_value(policy)], https=True, policy=policy) == []


@pytest.mark.parametrize("server", SERVERS)
def test_old_profile_carries_a_loud_warning(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--policy mozilla-5.7-old`` output says where it may (and may not) be used."""
    assert main(["tls", "config", "--policy", "mozilla-5.7-old", "--server", server]) == 0
    out = capsys.readouterr().out
    assert "!!! WARNING: this policy enables TLSv1 and TLSv1.1" in out
    assert "ONLY on a separate endpoint" in out
    assert "never as the default" in out


@pytest.mark.parametrize("name", ["intermediate", "modern"])
def test_current_profiles_have_no_legacy_warning(name: str) -> None:
    """Intermediate and modern snippets carry no legacy warning."""
    for server in SERVERS:
        assert "WARNING" not in generate_config(profiles.by_name(name), server)


def test_top_level_help_lists_tls_audit(capsys: pytest.CaptureFixture[str]) -> None:
    """``styku-crypto --help`` names ``tls audit`` in the tls command's description."""
    assert main(["--help"]) == 0
    assert "tls audit" in " ".join(capsys.readouterr().out.split())  # however it wraps
