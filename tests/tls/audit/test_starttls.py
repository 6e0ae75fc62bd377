"""STARTTLS and protocol-specific TLS entry (issue 16): preambles, refusals, hostile servers.

The ``scripted`` fixture runs hand-written server preambles for all eight
protocols, in front of real OpenSSL TLS; the ``daemons`` fixture (in
``test_starttls_daemons.py``) runs the real servers.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto._cli import main
from styku_crypto._cli._tls_audit import STARTTLS_HELP
from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls.audit import Target, audit, parse_target
from styku_crypto.tls.audit._starttls import (
    PROTOCOLS,
    PreambleError,
    _Driver,
    describe_foreign,
    protocol_for,
)
from tests.tls.audit import _scripted
from tests.tls.audit.conftest import STARTTLS_TIMEOUT, Scanned

# ------------------------------------------------------------------ targets


@pytest.mark.parametrize(
    ("text", "protocol", "port"),
    [
        ("postgres://db.example:5432", "postgres", 5432),
        ("postgresql://user@db.example/app", "postgres", 5432),
        ("mysql://db.example", "mysql", 3306),
        ("mariadb://db.example:3307", "mysql", 3307),
        ("smtp://mx.example:587", "smtp", 587),
        ("smtp://mx.example", "smtp", 25),
        ("smtp://mx.example:465", "smtps", 465),
        ("imap://[::1]", "imap", 143),
        ("pop3://mail.example", "pop3", 110),
        ("ldap://dir.example", "ldap", 389),
        ("ftp://files.example", "ftp", 21),
        ("xmpp://chat.example", "xmpp", 5222),
        ("https://www.example/path", "https", 443),
        ("www.example", "https", 443),
    ],
)
def test_url_targets_pick_protocol_and_port(text: str, protocol: str, port: int) -> None:
    """The URL scheme picks how TLS is entered and the default port; SMTP on 465 is implicit."""
    target = parse_target(text)
    assert (target.protocol, target.port) == (protocol, port)


def test_starttls_option_applies_to_plain_targets() -> None:
    """``starttls=`` sets the protocol (and default port) of targets without a scheme."""
    assert parse_target("db.example", starttls="postgres") == Target(
        "db.example", 5432, None, "postgres"
    )
    assert parse_target("mx.example:465", starttls="smtp").protocol == "smtps"


@pytest.mark.parametrize(
    ("text", "starttls"),
    [("gopher://x.example", None), ("x.example", "nntp"), ("smtp://x.example", "imap")],
)
def test_unknown_or_contradictory_protocol_is_input_error(text: str, starttls: str | None) -> None:
    """An unknown protocol, or a scheme contradicting --starttls, is refused before any I/O."""
    with pytest.raises(InvalidInputError):
        parse_target(text, starttls=starttls)


def test_audit_refuses_a_target_with_unknown_protocol() -> None:
    """A hand-built Target with a made-up protocol is an input error, not a crash mid-scan."""
    with pytest.raises(InvalidInputError):
        audit([Target("127.0.0.1", 1, None, "gopher")], timeout=1)


def test_cli_help_lists_every_protocol() -> None:
    """The ``--starttls`` help (kept import-free) names exactly the registry's protocols."""
    listed = {p.strip() for part in STARTTLS_HELP.split(";") for p in part.split("(")[0].split(",")}
    assert listed == set(PROTOCOLS)


# ------------------------------------------------------------------ sans-I/O preambles


def _run_server_script(name: str, replies: list[bytes], cuts: list[int]) -> list[bytes]:
    """Drive a conversation, delivering each reply cut into pieces; return what was sent."""
    driver = _Driver(protocol_for(name), "mx.example")
    sent = [driver.start()]
    for reply in replies:
        pieces = []
        at = 0
        for cut in sorted(c % (len(reply) + 1) for c in cuts):
            pieces.append(reply[at:cut])
            at = max(at, cut)
        pieces.append(reply[at:])
        out = b""
        for piece in pieces:
            if piece:
                out = driver.receive(piece) or out
        sent.append(out)
    assert driver.done
    return sent


SMTP_REPLIES = [
    b"220-mx.example ESMTP\r\n220 ready\r\n",
    b"250-mx.example\r\n250-SIZE 100\r\n250 STARTTLS\r\n",
    b"220 2.0.0 go ahead\r\n",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_preamble_is_independent_of_how_replies_are_split(cuts: list[int]) -> None:
    """However the server's bytes are chunked, the client sends the same commands and finishes."""
    sent = _run_server_script("smtp", SMTP_REPLIES, cuts)
    assert sent == [b"", b"EHLO styku-tls-audit.invalid\r\n", b"STARTTLS\r\n", b""]


@pytest.mark.parametrize(
    ("name", "replies", "kind", "words"),
    [
        ("smtp", [b"554 no service\r\n"], "refused", "554 no service"),
        ("smtp", [b"220 hi\r\n", b"250 mx\r\n"], "refused", "does not offer STARTTLS"),
        ("smtp", [b"SSH-2.0-OpenSSH_9.2\r\n"], "foreign", "speaks SSH"),
        ("imap", [b"* BYE go away\r\n"], "refused", "BYE"),
        ("pop3", [b"-ERR busy\r\n"], "refused", "-ERR busy"),
        ("ftp", [b"220 ok\r\n", b"500 what\r\n"], "refused", "500 what"),
        ("postgres", [b"N"], "refused", "ssl = off"),
        ("postgres", [b"HTTP/1.1 400 Bad Request\r\n\r\n"], "foreign", "plain HTTP"),
        (
            "ldap",
            [b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x02\x04\x00\x04\x00"],
            "refused",
            "code 2",
        ),
        ("xmpp", [b"<stream:stream><stream:features></stream:features>"], "refused", "starttls"),
        (
            "xmpp",
            [
                b"<stream:stream id='{PhantomData}'><stream:error><host-unknown xmlns='x'/>",
                b"<text xmlns='x'>no such\x00 host</text></stream:error>",
            ],
            "refused",
            "XMPP stream error: host-unknown ('no such host')",
        ),
        ("xmpp", [b"<stream:stream><stream:error/></stream:stream>"], "refused", "no condition"),
        ("mysql", [b"\x0f\x00\x00\x00\xff\x69\x04Host blocked"], "refused", "Host blocked"),
        ("smtp", [b"220 hi\r\n", b"250 STARTTLS\r\n", b"220 go\r\nEVIL"], "injection", "not asked"),
    ],
)
def test_refusals_and_foreign_replies_raise_clear_errors(
    name: str, replies: list[bytes], kind: str, words: str
) -> None:
    """Each refusal, foreign greeting or injected byte ends the preamble with a readable reason."""
    driver = _Driver(protocol_for(name), "x.example")
    driver.start()
    for reply in replies[:-1]:
        driver.receive(reply)
    with pytest.raises(PreambleError) as caught:
        driver.receive(replies[-1])
    assert caught.value.kind == kind
    assert words in str(caught.value)


def test_server_hang_up_mid_preamble_is_an_error() -> None:
    """EOF during the preamble says so, quoting what came before."""
    driver = _Driver(protocol_for("imap"), "x.example")
    driver.start()
    driver.receive(b"* OK ")
    with pytest.raises(PreambleError, match="closed the connection"):
        driver.receive(b"")


def test_describe_foreign_names_common_protocols() -> None:
    """Plain HTTP, SSH, SMTP and MySQL greetings are recognised by their first bytes."""
    assert "plain HTTP" in (describe_foreign(b"HTTP/1.0 400 Bad Request\r\n") or "")
    assert describe_foreign(b"SSH-2.0-x\r\n") == "SSH"
    assert "SMTP" in (describe_foreign(b"220 mx ESMTP\r\n") or "")
    assert "MySQL" in (describe_foreign(_scripted._mysql_greeting(True)) or "")
    assert describe_foreign(b"\x00\x01\x02") is None


# ------------------------------------------------------------------ scripted servers


@pytest.mark.parametrize("protocol", _scripted.PROTOCOLS)
def test_every_protocol_scans_through_its_preamble(scripted: Scanned, protocol: str) -> None:
    """Every probe does the preamble: the enumeration and the full handshakes all succeed."""
    result = scripted.result(f"{protocol}-ok")
    assert result.complete, result.error
    assert result.compliant, [f.message for f in result.findings if f.severity == "error"]
    facts = result.facts
    assert facts.protocols["TLSv1.2"]
    assert facts.protocols["TLSv1.3"]
    assert not facts.protocols["TLSv1.1"]
    assert facts.suites["TLSv1.2"]
    assert facts.certificates, "the chain came through the preamble (pyOpenSSL handshake)"
    assert facts.negotiated_protocol == "TLSv1.3"
    assert facts.hsts is None
    assert facts.not_tested["hsts"].startswith("not applicable")
    assert not any(f.rule.startswith("TLS-HSTS") for f in result.findings)
    assert facts.alpn == []  # no HTTP ALPN ids offered to a non-HTTP service
    assert facts.not_tested["alpn"].startswith("not applicable")
    assert result.target.protocol == protocol
    right, skipped = _scripted.PREAMBLES[f"{protocol}-ok"]
    assert skipped == 0, "a probe connected without the preamble"
    assert right >= 20, right  # the whole enumeration (29 connections here) did it


@pytest.mark.parametrize("protocol", _scripted.PROTOCOLS)
def test_refusal_is_a_finding_and_exit_3(scripted: Scanned, protocol: str) -> None:
    """A server that will not start TLS: incomplete, AUDIT-STARTTLS-001, never compliant."""
    result = scripted.result(f"{protocol}-refuse")
    assert not result.complete
    assert result.error is not None
    assert result.error.startswith("TLS could not be started")
    assert [f.rule for f in result.findings] == ["AUDIT-STARTTLS-001"]
    assert result.findings[0].severity == "error"
    assert result.grade is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("smtp-silent", "no complete answer to the preamble within"),
        ("smtp-garbage", "no TLS after the preamble"),
        ("smtp-inject", "STARTTLS injection pattern"),
        ("postgres-http", "not PostgreSQL: the server speaks plain HTTP"),
        ("imap-http", "not IMAP: the server speaks plain HTTP"),
    ],
)
def test_hostile_preambles_end_in_bounded_time(scripted: Scanned, name: str, words: str) -> None:
    """Silence, garbage after STARTTLS, injected bytes, another protocol: a finding, no hang."""
    result = scripted.result(name)
    assert not result.complete
    assert any(words in f.message for f in result.findings), result.findings
    assert result.duration < STARTTLS_TIMEOUT * 3


def test_scripted_run_exits_3(scripted: Scanned) -> None:
    """Refusing and hostile targets make the whole run incomplete: exit code 3."""
    assert scripted.report.exit_code == 3


def test_plain_http_port_is_named_as_http(scripted: Scanned) -> None:
    """Issue 16 wording: a plain-HTTP port says it speaks HTTP, not "content type 60"."""
    result = scripted.result("plain-http")
    assert result.error is not None
    assert "plain HTTP" in result.error
    assert "content type" not in result.error


def test_well_known_1024_bit_prime_is_named(scripted: Scanned) -> None:
    """RFC 2409 Oakley group 2 is identified: AUDIT-DH-001 (precomputation), grade at most B."""
    result = scripted.result("dhe-oakley2")
    assert result.facts.dh_bits == 1024
    assert result.facts.dh_group == "1024-bit Oakley group 2 (RFC 2409)"
    found = {f.rule: f for f in result.findings}
    assert "AUDIT-DH-001" in found
    assert "AUDIT-DH-002" not in found
    assert "precomputation" in found["AUDIT-DH-001"].message
    assert "TLS-DH-001" in found
    assert result.grade is not None
    assert result.grade >= "B"


def test_custom_prime_is_reported_as_custom(scripted: Scanned) -> None:
    """A prime from ``openssl dhparam`` is no published group: AUDIT-DH-002, not DH-001."""
    result = scripted.result("dhe-custom")
    assert result.facts.dh_group == "custom"
    rules = {f.rule for f in result.findings}
    assert "AUDIT-DH-002" in rules
    assert "AUDIT-DH-001" not in rules


def test_cli_starttls_exit_codes(scripted: Scanned, capsys: pytest.CaptureFixture[str]) -> None:
    """``tls audit --starttls smtp host:port``: 0 for the good server, 3 for the refusing one."""
    good = parse_target(scripted.targets["smtp-ok"])
    bad = parse_target(scripted.targets["smtp-refuse"])
    common = ["--ca-file", str(scripted.certs.ca), "--sni", "localhost", "--timeout", "2"]
    assert main(["tls", "audit", "--starttls", "smtp", f"127.0.0.1:{good.port}", *common]) == 0
    capsys.readouterr()
    started = time.monotonic()
    assert main(["tls", "audit", "--starttls", "smtp", f"127.0.0.1:{bad.port}", *common]) == 3
    out = capsys.readouterr().out
    assert time.monotonic() - started < 5
    assert "AUDIT-STARTTLS-001" in out
    assert "does not offer STARTTLS" in out
    assert "(smtp, SNI localhost)" in out


def test_json_report_names_protocol_and_dh_group(scripted: Scanned) -> None:
    """The JSON report carries how TLS was entered and the identified DH group."""
    import json

    from styku_crypto.tls.audit import to_json

    doc = json.loads(to_json(scripted.report))
    by_port = {t["port"]: t for t in doc["targets"]}
    smtp = by_port[parse_target(scripted.targets["smtp-ok"]).port]
    assert smtp["protocol"] == "smtp"
    assert smtp["hsts"]["header"] is None
    oakley = by_port[parse_target(scripted.targets["dhe-oakley2"]).port]
    assert oakley["dh_group"] == "1024-bit Oakley group 2 (RFC 2409)"
    assert oakley["protocol"] == "tls"
