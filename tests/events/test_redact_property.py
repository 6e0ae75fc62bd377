"""Issue 22: a secret, in any of its shapes, never reaches the ECS output.

Every value below is generated as a secret; it is passed as an event field, in a
%-formatted message after a known label, inside a dict or list argument, or in an
exception (message, chained cause, note), through RedactionFilter + EcsFormatter,
and must not appear in the line in any form.
"""

from __future__ import annotations

import base64
import io
import logging
import random
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from styku_crypto.events import EcsFormatter, RedactionFilter, emit
from tests._support import leaks

_LOGGER = "h_app_property_redaction"  # outside styku_crypto: these tests log secrets on purpose


# A seeded generator: hypothesis shrinks the seed, never the key's randomness.
_SEEDED = st.integers(0, 2**32).map(random.Random)


def _key_bytes(rnd: random.Random, size: int) -> bytes:
    # Keys are random: drawn from a seeded generator so hypothesis can shrink the
    # seed without shrinking the key to all zeros (which no shape rule can tell
    # from padding; under a secret label or field it is redacted all the same).
    return rnd.randbytes(size)


@st.composite
def key_forms(draw: st.DrawFn) -> str:
    rnd = draw(_SEEDED)
    key = _key_bytes(rnd, draw(st.integers(16, 64)))
    form = draw(st.sampled_from(["hex", "HEX", "0x", "colon", "b64", "b64url", "b64url_nopad"]))
    if form == "hex":
        return key.hex()
    if form == "HEX":
        return key.hex().upper()
    if form == "0x":
        return "0x" + key.hex()
    if form == "colon":
        return ":".join(f"{b:02x}" for b in key)
    if form == "b64":
        return base64.b64encode(key).decode()
    if form == "b64url":
        return base64.urlsafe_b64encode(key).decode()
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


@st.composite
def jwts(draw: st.DrawFn) -> str:
    rnd = draw(_SEEDED)

    def part(n: int) -> str:
        return base64.urlsafe_b64encode(_key_bytes(rnd, n)).decode().rstrip("=")

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    return f"{header}.{part(24)}.{part(32)}"


@st.composite
def pems(draw: st.DrawFn) -> str:
    rnd = draw(_SEEDED)
    kind = draw(st.sampled_from(["", "RSA ", "EC ", "ENCRYPTED "]))
    body = base64.b64encode(_key_bytes(rnd, 48)).decode()
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


@st.composite
def crypt_hashes(draw: st.DrawFn) -> str:
    rnd = draw(_SEEDED)
    alphabet = string.ascii_letters + string.digits + "./"
    salt = "".join(rnd.choice(alphabet) for _ in range(16))
    digest = "".join(rnd.choice(alphabet) for _ in range(43))
    prefix = draw(
        st.sampled_from(
            [
                "$1$",
                "$5$rounds=5000$",
                "$6$",
                "$y$j9T$",
                "$gy$j9T$",
                "$2b$12$",
                "$2a$10$",
                "$2y$10$",
                "$argon2id$v=19$m=65536,t=3,p=4$",
                "$argon2i$v=19$m=4096,t=3,p=1$",
                "$scrypt$ln=16,r=8,p=1$",
                "$pbkdf2-sha256$29000$",
                "pbkdf2_sha256$600000$",
                "$7$C6..../....",
            ]
        )
    )
    return f"{prefix}{salt}${digest}"


@st.composite
def passwords(draw: st.DrawFn) -> str:
    rnd = draw(_SEEDED)
    alphabet = string.ascii_letters + string.digits + "!#%&*+-?@^_~"
    words = draw(st.integers(1, 4))
    return " ".join(
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(4, 10))) for _ in range(words)
    )


@st.composite
def db_urls(draw: st.DrawFn) -> tuple[str, str]:
    password = draw(passwords()).replace(" ", "").replace("@", "%40")
    scheme = draw(st.sampled_from(["postgresql", "mysql", "redis", "amqp", "https"]))
    return f"{scheme}://app:{password}@db.internal:5432/app", password


SHAPED = key_forms() | jwts() | pems() | crypt_hashes()
SECRET_LABELS = st.sampled_from(
    [
        "password",
        "pass",
        "db_password",
        "POSTGRES_PASSWORD",
        "token",
        "secret",
        "api_key",
        "X-Api-Key",
        "dek",
        "key",
        "pepper",
        "Authorization",
        "cookie",
        "set-cookie",
        "session",
        "sid",
        "private_key",
        "credentials",
    ]
)


def _ecs_of(do_log) -> str:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(EcsFormatter())
    logger = logging.getLogger(_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        do_log(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def _assert_absent(secret: str, out: str) -> None:
    leaks.register_secret(secret)
    assert out
    assert secret not in out, out
    for part in secret.split():
        if len(part) >= 8:
            assert part not in out, out


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(secret=SHAPED, label=st.sampled_from(["", "loaded ", "value="]))
def test_shaped_secret_in_a_message_never_appears(secret: str, label: str) -> None:
    """Keys (hex, 0x, colon, base64, base64url), JWTs, PEM and crypt hashes in free text."""
    out = _ecs_of(lambda log: log.warning("%s%s done", label, secret))
    _assert_absent(secret, out)


@_SETTINGS
@given(secret=SHAPED | passwords(), label=SECRET_LABELS, sep=st.sampled_from(["=", ": ", " = "]))
def test_labelled_secret_never_appears(secret: str, label: str, sep: str) -> None:
    """Any value after a secret label, to the end of the line or the closing quote."""
    out = _ecs_of(lambda log: log.info("config %s%s%s", label, sep, secret))
    _assert_absent(secret, out)
    quoted = _ecs_of(lambda log: log.info("config {%r: %r, 'user': 'bob'}", label, secret))
    _assert_absent(secret, quoted)
    assert "bob" in quoted


@_SETTINGS
@given(url=db_urls())
def test_url_password_never_appears(url: tuple[str, str]) -> None:
    """scheme://user:PASSWORD@host loses its password, in a message and an exception."""
    text, password = url
    out = _ecs_of(lambda log: log.error("connecting to %s", text))
    _assert_absent(password, out)
    assert "db.internal" in out

    def fail(log: logging.Logger) -> None:
        try:
            raise ConnectionError(f"could not connect to {text}")
        except ConnectionError:
            log.exception("database down")

    _assert_absent(password, _ecs_of(fail))


@_SETTINGS
@given(secret=SHAPED | passwords(), label=SECRET_LABELS)
def test_dict_and_list_arguments_go_through_the_name_rules(secret: str, label: str) -> None:
    """Dict arguments are judged by key name; bytes in lists and tuples never show."""
    out = _ecs_of(lambda log: log.info("settings %s", {label: secret, "user": "bob"}))
    _assert_absent(secret, out)
    key = secret.encode()
    out = _ecs_of(lambda log: log.info("blobs %r %r", [key, 1], ("x", key)))
    assert "bytes fp:" in out
    _assert_absent(secret, out)


@_SETTINGS
@given(secret=SHAPED | passwords(), label=SECRET_LABELS)
def test_secret_named_event_field_never_appears(secret: str, label: str) -> None:
    """emit() with a secret under a secret-named attribute writes [REDACTED]."""
    attribute = label.replace("-", "_")
    out = _ecs_of(
        lambda _log: emit_to(_LOGGER, attribute, secret),
    )
    _assert_absent(secret, out)


def emit_to(logger_name: str, attribute: str, secret: str) -> None:
    """emit() logs on styku_crypto.<capability>; copy its record to the test logger."""
    records: list[logging.LogRecord] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    grab = Grab()
    lib = logging.getLogger("styku_crypto.passwords")
    lib.addHandler(grab)
    old = lib.level
    lib.setLevel(logging.INFO)
    try:
        emit(
            "password.failed",
            capability="passwords",
            outcome="failure",
            attributes={attribute: secret},
        )
    finally:
        lib.removeHandler(grab)
        lib.setLevel(old)
    for record in records:
        logging.getLogger(logger_name).handle(record)


@_SETTINGS
@given(secret=SHAPED, size=st.integers(16, 64), data=_SEEDED)
def test_exceptions_never_show_secrets(secret: str, size: int, data: random.Random) -> None:
    """error.message, the stack trace, chained causes and notes are all redacted."""
    raw = _key_bytes(data, size)
    leaks.register_secret(raw)

    def fail(log: logging.Logger) -> None:
        try:
            try:
                raise ValueError(raw)
            except ValueError as inner:
                outer = RuntimeError(f"while loading {secret}")
                outer.add_note(f"token={secret}")
                raise outer from inner
        except RuntimeError:
            log.exception("load failed")

    out = _ecs_of(fail)
    _assert_absent(secret, out)
    leaks.assert_no_secret_in("exception ECS line", out)
    assert "bytes fp:" in out
