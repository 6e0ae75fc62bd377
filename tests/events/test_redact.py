"""The redaction filter: secrets passed to logging by mistake never reach a handler's output."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.events import (
    DEFAULT_TOKEN_PREFIXES,
    EVENT_ATTRIBUTE,
    REDACTED,
    REDACTED_ATTRIBUTE,
    EcsFormatter,
    RedactionFilter,
    Redactor,
)
from styku_crypto.events._redact import _looks_random
from tests._support import leaks

_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIBgL3XG6Ue1vV0B5JcwIw0VY5Tto0Hm1UTOT5UKaHLTE\n"
    "-----END PRIVATE KEY-----"
)
_PHC = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$qA1bJ3Rdt6mVL0xh5c0Dm8e0y3dQ8ZEnQ0m8mEdh1nA"


@pytest.fixture
def sink() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """An application logger with a redacting ECS handler writing to a buffer.

    Deliberately outside ``styku_crypto``: these tests log secrets on purpose,
    and the session-wide leak guard (rightly) captures raw ``styku_crypto`` records.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(EcsFormatter())
    logger = logging.getLogger("h_app_under_redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "secret",
    [
        os.urandom(32).hex(),
        base64.b64encode(os.urandom(32)).decode(),
        base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("="),
        _PEM,
        _PHC,
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$pbkdf2-sha256$29000$N2bMuTcGoPSeE0JIiXGuFQ$MjKk2Xa3xC5tKsg5zZv4Mmy4I9s8uJYQq4dVlH3u0aQ",
    ],
    ids=["hex", "b64", "b64url", "pem", "argon2", "bcrypt", "pbkdf2"],
)
def test_secret_shapes_are_redacted(sink: tuple[logging.Logger, io.StringIO], secret: str) -> None:
    """Key material, PEM private keys and password hashes in a message are replaced."""
    logger, stream = sink
    leaks.register_secret(secret)
    logger.warning("oops: %s trailing", secret)
    out = stream.getvalue()
    assert REDACTED in out
    assert "trailing" in out
    assert '"redacted": 1' in out
    leaks.assert_no_secret_in("redacted ECS line", out)


@pytest.mark.parametrize(
    "text",
    [
        "password=correct-horse",
        "Password: 'correct-horse'",
        "{'password': 'correct-horse'}",
        "api_key=correct-horse&x=1",
        "client_secret = correct-horse",
        "pepper: correct-horse",
        "Authorization: Bearer correct-horse.x.y",
    ],
)
def test_labelled_values_are_redacted(text: str) -> None:
    """Values labelled password/secret/token/api_key/pepper or Bearer are replaced, labels kept."""
    out, count = Redactor().redact(text)
    assert count == 1
    assert "correct-horse" not in out
    assert REDACTED in out


def test_token_prefix_is_redacted() -> None:
    """Text tokens are recognised by prefix, whatever follows."""
    redactor = Redactor(token_prefixes=("stk1.",))
    out, count = redactor.redact("bad token stk1.AAAA-short_but.secret rejected")
    assert (out, count) == (f"bad token {REDACTED} rejected", 1)


@pytest.mark.parametrize(
    "text",
    [
        "envelope.decrypt.failed tenant=acme key_id=tk_0011223344556677 version=3",
        "/tmp/pytest-of-root/pytest-12/test_something0/incidents.jsonl",
        "550e8400-e29b-41d4-a716-446655440000",
        "styku_crypto.passwords.hash_refused_because_memory_cost_too_high",
        "GET /api/v1/customers/12345/orders?page=2 HTTP/1.1",
        "TLSv1.3 TLS_AES_256_GCM_SHA384 x25519 ECDHE-RSA-AES128-GCM-SHA256",
        "groups set with SSL_CTX_set1_groups_list via ctypes",
        "backup 20261127T030514864122Z-f4d26049 written",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Ids, paths, UUIDs, dotted names, URLs and cipher names are not mistaken for secrets."""
    assert Redactor().redact(text) == (text, 0)


@given(st.binary(min_size=16, max_size=64))
def test_random_keys_never_survive(key: bytes) -> None:
    """Any 16..64-byte key as hex, or base64 the heuristic deems random, is redacted."""
    redactor = Redactor()
    for form in (key.hex(), base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()):
        if len(form.rstrip("=")) < 24:
            continue
        out, _ = redactor.redact(f"loaded key {form} from disk")
        # hex is always caught; base64 needs mixed classes and must not read as words
        assert form.rstrip("=") not in out or not _looks_random(form)


def test_bytes_args_extras_events_and_exceptions(sink: tuple[logging.Logger, io.StringIO]) -> None:
    """Binary args, extra attributes, event fields and exception text are all scrubbed."""
    logger, stream = sink
    key = os.urandom(32)
    password = "Tr0ub4dor&3-" + os.urandom(4).hex()
    leaks.register_secret(key)
    leaks.register_secret(password)
    try:
        raise ValueError(f"config password={password}")
    except ValueError:
        logger.exception(
            "loaded %r",
            key,
            extra={
                "secret_blob": key,
                EVENT_ATTRIBUTE: {
                    "event": "key.created",
                    "outcome": "success",
                    "reason": key.hex(),
                },
            },
        )
    out = stream.getvalue()
    leaks.assert_no_secret_in("scrubbed record", out)
    assert out.count(REDACTED) + out.count(" bytes fp:") >= 4


def test_record_is_marked(caplog: pytest.LogCaptureFixture) -> None:
    """A redacted record carries the number of replacements; a clean one carries none."""
    redaction = RedactionFilter()
    clean = logging.LogRecord("styku_crypto.x", logging.INFO, __file__, 1, "fine %s", ("ok",), None)
    assert redaction.filter(clean)
    assert not hasattr(clean, REDACTED_ATTRIBUTE)
    assert clean.getMessage() == "fine ok"
    dirty = logging.LogRecord(
        "styku_crypto.x", logging.INFO, __file__, 1, "pw %s", ("password=abcdefgh",), None
    )
    assert redaction.filter(dirty)
    assert getattr(dirty, REDACTED_ATTRIBUTE) == 1
    assert dirty.getMessage() == f"pw password={REDACTED}"


class _Explodes:
    def __str__(self) -> str:
        raise RuntimeError("boom")

    __repr__ = __str__


def test_never_crashes_and_fails_closed() -> None:
    """A record that cannot be rendered is emitted with a fixed text, no args, no extras."""
    record = logging.LogRecord("styku_crypto.x", logging.INFO, __file__, 1, _Explodes(), None, None)
    record.custom = _Explodes()
    assert RedactionFilter().filter(record)
    assert "could not be checked" in record.getMessage()
    assert record.custom == REDACTED
    bad_template = logging.LogRecord(
        "styku_crypto.x", logging.INFO, __file__, 1, "%d %d", ("x" * 40 + "A1",), None
    )
    assert RedactionFilter().filter(bad_template)


@given(st.text(max_size=300))
def test_redactor_total_on_any_text(text: str) -> None:
    """The redactor never raises and never grows a clean text."""
    out, count = Redactor().redact(text)
    if count == 0:
        assert out == text


def test_envelope_text_tokens_are_redacted(tmp_path: Path) -> None:
    """The default prefixes track the envelope's text form; a real text token is redacted."""
    from styku_crypto.envelope import TEXT_PREFIX, Envelope
    from styku_crypto.keys import KeyStore, LocalRootKey

    assert TEXT_PREFIX in DEFAULT_TOKEN_PREFIXES
    with KeyStore.open(tmp_path / "k.db", root=LocalRootKey(tmp_path / "root.key")) as store:
        store.create_tenant("acme")
        plaintext = b"card " + os.urandom(12)
        leaks.register_secret(plaintext)
        token = Envelope(store).encrypt_text(plaintext, tenant="acme", context={"t": "x"})
    leaks.register_secret(token)
    out, count = Redactor().redact(f"could not decrypt {token}, giving up")
    assert out == f"could not decrypt {REDACTED}, giving up"
    assert count == 1


# ---------------------------------------------------------------- issue 22: found leaks

_FOUND_IN_MESSAGES = [
    ("pass=Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("db_password=Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("POSTGRES_PASSWORD=Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("dek=Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("key=Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("Authorization: Token Tr0ub4dor3xyz", "Tr0ub4dor3xyz"),
    ("password=correct horse battery staple", "battery staple"),
    ("password: 'correct horse battery staple', user=bob", "battery staple"),
    ("sessionid=q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3", "q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3"),
    ("Cookie: sid=q8w7e6r5t4y3u2i1; theme=dark", "q8w7e6r5t4y3u2i1"),
    ("db postgresql://app:Sup3rS3cret!@db.internal/app", "Sup3rS3cret!"),
    (
        "yescrypt $y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
        "X3DX6M94c7o",
    ),
    (
        "django pbkdf2_sha256$600000$c2FsdHNhbHQ$MjKk2Xa3xC5tKsg5zZv4Mmy4I9s8uJYQq4dVl",
        "MjKk2Xa3xC5t",
    ),
    ("key 0x00112233445566778899aabbccddeeff loaded", "00112233445566778899"),
    ("fp 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff", "00:11:22:33:44:55"),
]


@pytest.mark.parametrize(("text", "secret"), _FOUND_IN_MESSAGES)
def test_issue_22_message_leaks_are_closed(text: str, secret: str) -> None:
    """Each message shape the outside test leaked through is now redacted."""
    out, count = Redactor().redact(text)
    assert secret not in out
    assert count >= 1


def test_token_urlsafe_16_is_always_redacted() -> None:
    """secrets.token_urlsafe(16) was missed 100% of the time; now every draw is caught."""
    import secrets

    redactor = Redactor()
    for _ in range(2000):
        token = secrets.token_urlsafe(16)
        assert token not in redactor.redact(f"reset link token {token} sent")[0], token


def test_dict_argument_is_judged_by_key(sink: tuple[logging.Logger, io.StringIO]) -> None:
    """{'pass': ..., 'authorization': ..., 'cookie': ...} as a %-argument leaks none of them."""
    logger, stream = sink
    values = {"pass": "hunter2-a1", "authorization": "Token x-hunter2", "cookie": "sid=hunter2-c"}
    for value in values.values():
        leaks.register_secret(value)
    logger.info("request %s", {**values, "user": "bob"})
    logger.info("request %(pass)s %(user)s", {"pass": "hunter2-a1", "user": "bob"})
    out = stream.getvalue()
    leaks.assert_no_secret_in("dict argument", out)
    assert out.count("bob") == 2


def test_bytes_in_containers_show_length_and_fingerprint(
    sink: tuple[logging.Logger, io.StringIO],
) -> None:
    """Bytes nested in a list or tuple, of any length, never appear as their repr."""
    logger, stream = sink
    key = os.urandom(32)
    leaks.register_secret(key)
    logger.info("keys %r %s", [key, b"abc"], (1, bytearray(key)))
    out = stream.getvalue()
    leaks.assert_no_secret_in("bytes in containers", out)
    assert "b'" not in out
    assert "\\\\x" not in out
    assert out.count("[32 bytes fp:") == 2  # same bytes, same fingerprint, twice
    assert "[3 bytes fp:" in out


def test_exception_with_bytes_and_url(sink: tuple[logging.Logger, io.StringIO]) -> None:
    """ValueError(<32 bytes>) and a database URL in an exception leak through no ECS field."""
    logger, stream = sink
    key = os.urandom(32)
    leaks.register_secret(key)
    leaks.register_secret("Sup3rS3cret!x")
    try:
        raise ValueError(key)
    except ValueError:
        logger.exception("bad key")
    try:
        raise OSError("cannot reach postgresql://app:Sup3rS3cret!x@db/app")
    except OSError:
        logger.exception("db down")
    out = stream.getvalue()
    leaks.assert_no_secret_in("exception lines", out)
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["error"]["message"].startswith("[32 bytes fp:")
    assert first["error"]["type"] == "ValueError"
    assert "Sup3rS3cret" not in second["error"]["stack_trace"]
    assert second["error"]["message"] == "cannot reach postgresql://app:[REDACTED]@db/app"


def test_formatter_redacts_exceptions_without_the_filter() -> None:
    """EcsFormatter alone applies the rules to error.message and the stack trace."""
    key = os.urandom(32)
    leaks.register_secret(key)
    try:
        try:
            raise KeyError(key.hex())
        except KeyError as inner:
            outer = RuntimeError("wrap")
            outer.add_note(f"password={key.hex()}")
            raise outer from inner
    except RuntimeError:
        record = logging.LogRecord("app", logging.ERROR, "f", 1, "boom", None, sys.exc_info())
    line = EcsFormatter().format(record)
    leaks.assert_no_secret_in("formatter-only exception", line)
    assert "KeyError" in line
    assert "password=[REDACTED]" in line


def test_strict_drops_free_text_arguments() -> None:
    """strict=True drops free-text %-arguments, keeps numbers and declared fields."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter(strict=True))
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("h_app_strict")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("user %s tried %d times with %s", "bob", 3, "hunter2 hunter2")
        logger.warning("%(tenant)s %(note)s", {"tenant": "acme", "note": "hunter2 hunter2"})
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first == "user [REDACTED] tried 3 times with [REDACTED]"
    assert second == "acme [REDACTED]"


@given(
    st.text(max_size=30)
    | st.text(alphabet="abcdefABCDEF0123456789_-./+:=$' ", max_size=30)
    | st.from_regex(r"[A-Za-z0-9+/_-]{18,21}", fullmatch=True)
)
def test_quick_clean_path_matches_the_full_scan(text: str) -> None:
    """Hot path: whenever _quick_clean says clean, the full rule set changes nothing."""
    from styku_crypto.events._redact import _quick_clean

    if _quick_clean(text, DEFAULT_TOKEN_PREFIXES):
        full = Redactor(extra_patterns=[r"(?!)"])  # an extra pattern disables the hot path
        assert full.redact(text) == (text, 0)
        assert Redactor().redact(text) == (text, 0)


def test_filter_skips_only_events_built_by_emit() -> None:
    """A hand-built styku_event dict is judged in full; emit()'s judged dict is not re-judged."""
    record = logging.LogRecord("app", logging.INFO, "f", 1, "m", None, None)
    record.styku_event = {"event": "key.rotated", "password": "hunter2-hunter2", "note": "x"}
    RedactionFilter().filter(record)
    assert record.styku_event["password"] == REDACTED
