"""Issue 13: require_pepper, the PepperSet policy, and offline pepper-wrapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest

from styku_crypto.exceptions import (
    InvalidHashError,
    InvalidInputError,
    PasswordMismatchError,
    UnpepperedHashError,
)
from styku_crypto.passwords import CHEAPEST, PasswordHasher, PepperSet
from tests._support import leaks
from tests.passwords.conftest import EventLog, new_password, new_pepper
from tests.passwords.test_interop import LEGACY


def _hasher(peppers: PepperSet | None = None, **kw: object) -> PasswordHasher:
    return PasswordHasher(
        profile=CHEAPEST,
        insecure_test_only=True,
        pepper=peppers,
        max_concurrency=1,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def peppers() -> PepperSet:
    """A pepper set with one pepper ``p1`` that requires peppered hashes."""
    return PepperSet(new_pepper("p1"), required=True)


@pytest.fixture
def strict(peppers: PepperSet) -> Iterator[PasswordHasher]:
    """A hasher that requires a pepper (from the PepperSet policy)."""
    with _hasher(peppers) as h:
        yield h


def test_pepperset_policy_sets_require_pepper(peppers: PepperSet) -> None:
    """PepperSet(required=True) turns require_pepper on; an explicit keyword overrides it."""
    with _hasher(peppers) as h:
        assert h.require_pepper is True
    with _hasher(peppers, require_pepper=False) as h:
        assert h.require_pepper is False
    with _hasher(PepperSet(new_pepper("p2")), require_pepper=True) as h:
        assert h.require_pepper is True
    assert "required=True" in repr(peppers)


def test_require_pepper_without_pepper_is_refused() -> None:
    """require_pepper=True with no pepper is a configuration error, not a silent no-op."""
    with pytest.raises(InvalidInputError, match="pepper"):
        _hasher(None, require_pepper=True)


@pytest.mark.parametrize("scheme", sorted(LEGACY))
def test_unpeppered_and_legacy_refused_with_distinct_error(
    scheme: str, strict: PasswordHasher, events: EventLog
) -> None:
    """Once a pepper is required, unpeppered and legacy hashes raise UnpepperedHashError (an
    InvalidHashError) before any work, even with the right password, and never upgrade."""
    pw = new_password()
    stored = LEGACY[scheme](pw)
    for call in (strict.verify, strict.verify_and_update):
        with pytest.raises(UnpepperedHashError) as info:
            call(stored, pw)
        assert stored not in str(info.value)
    with pytest.raises(UnpepperedHashError):
        strict.needs_rehash(stored)
    assert events.last("password.hash_refused")["reason"] == "unpeppered"


def test_unpeppered_argon2_from_before_the_pepper_refused(peppers: PepperSet) -> None:
    """A hash this library made before the pepper existed is refused too (a planted write
    of one needs no pepper, which is the point)."""
    pw = new_password()
    with _hasher() as old:
        stored = old.hash(pw)
    with _hasher(peppers) as strict, pytest.raises(UnpepperedHashError):
        strict.verify(stored, pw)


@pytest.mark.parametrize("scheme", sorted(LEGACY))
def test_wrapped_legacy_verifies_under_required_pepper_and_upgrades(
    scheme: str, strict: PasswordHasher, events: EventLog
) -> None:
    """Every legacy format, wrapped offline, verifies with the same password under
    require_pepper, fails on a wrong one, and is upgraded to peppered Argon2id at login."""
    pw = new_password()
    stored = LEGACY[scheme](pw)
    wrapped = strict.pepper_wrap(stored)
    assert wrapped.startswith("$styku-wrap$v=1,pepper=p1$")
    assert strict.pepper_wrap(wrapped) == wrapped  # idempotent: a migration can re-run
    assert strict.needs_rehash(wrapped) is True
    assert strict.verify(wrapped, pw) is True
    with pytest.raises(PasswordMismatchError):
        strict.verify(wrapped, pw + "x")
    new = strict.verify_and_update(wrapped, pw)
    assert new is not None
    assert ",pepper=p1$" in new
    assert events.last("password.upgraded_legacy")["reason"] == "wrapped"
    assert strict.verify(new, pw) is True


@pytest.mark.parametrize("scheme", sorted(LEGACY))
def test_wrapped_hash_carries_no_tag(scheme: str, strict: PasswordHasher) -> None:
    """The wrapped form keeps no trace of the original tag: stolen, it cannot be cracked
    without the pepper."""
    pw = new_password()
    stored = LEGACY[scheme](pw)
    wrapped = strict.pepper_wrap(stored)
    tail = stored.rsplit("$", 1)[1][-20:]
    assert tail not in wrapped
    assert not any(ch not in "A.=" for ch in wrapped.rsplit("$", 1)[1][-20:])


def test_wrapped_needs_the_pepper(strict: PasswordHasher) -> None:
    """The same wrapped string under another pepper with the same id never verifies, and a
    hasher without that pepper id refuses it as an unknown pepper."""
    pw = new_password()
    wrapped = strict.pepper_wrap(LEGACY["django_pbkdf2_sha256"](pw))
    with _hasher(PepperSet(new_pepper("p1"))) as other, pytest.raises(PasswordMismatchError):
        other.verify(wrapped, pw)
    with _hasher(PepperSet(new_pepper("p2"))) as other, pytest.raises(InvalidHashError):
        other.verify(wrapped, pw)
    with _hasher() as none, pytest.raises(InvalidHashError, match="p1"):
        none.verify(wrapped, pw)


def test_wrapped_parameters_are_authenticated(strict: PasswordHasher) -> None:
    """Lowering a wrapped hash's cost or changing its salt breaks the MAC (mismatch), and a
    non-zero inner tag is malformed."""
    pw = new_password()
    wrapped = strict.pepper_wrap(LEGACY["django_pbkdf2_sha256"](pw))
    cheaper = wrapped.replace("$1000$", "$999$")
    with pytest.raises(PasswordMismatchError):
        strict.verify(cheaper, pw)
    with_tag = wrapped.rsplit("$", 1)[0] + "$" + base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(InvalidHashError, match="zeros"):
        strict.verify(with_tag, pw)


def test_wrap_wire_format_by_hand(strict: PasswordHasher, peppers: PepperSet) -> None:
    """Pin the format: HMAC-SHA256(pepper, label || inner-with-zero-tag || 0 || tag)."""
    pw = new_password()
    tag = hashlib.pbkdf2_hmac("sha256", pw.encode(), b"seasalt", 1200)
    stored = "pbkdf2_sha256$1200$seasalt$" + base64.b64encode(tag).decode()
    inner = "pbkdf2_sha256$1200$seasalt$" + base64.b64encode(bytes(32)).decode()
    key = peppers.current.export_key()
    mac = hmac.new(
        key, b"styku-crypto/pepper-wrap/v1\x00" + inner.encode() + b"\x00" + tag, "sha256"
    ).digest()
    expected = f"$styku-wrap$v=1,pepper=p1${base64.b64encode(mac).decode().rstrip('=')}${inner}"
    assert strict.pepper_wrap(stored) == expected


def test_wrap_refuses_what_would_not_verify(strict: PasswordHasher) -> None:
    """Wrapping parses with the same limits: malformed and over-ceiling hashes are refused,
    and a hasher without a pepper cannot wrap."""
    with pytest.raises(InvalidHashError):
        strict.pepper_wrap("$1$md5crypt$abcdefghijklmnopqrstuv")
    with pytest.raises(InvalidHashError, match="ceiling"):
        strict.pepper_wrap("$2b$14$" + "a" * 53)
    with _hasher() as none, pytest.raises(InvalidInputError):
        none.pepper_wrap(LEGACY["bcrypt_2b"](new_password()))


def test_peppered_hash_unchanged_by_wrap(strict: PasswordHasher) -> None:
    """A hash already peppered is returned as is (and still verifies)."""
    pw = new_password()
    stored = strict.hash(pw)
    assert strict.pepper_wrap(stored) == stored
    assert strict.verify(stored, pw)


def test_pepper_never_in_wrapped_or_errors(strict: PasswordHasher, peppers: PepperSet) -> None:
    """The pepper's key never appears in a wrapped hash or an error."""
    leaks.register_secret(peppers.current.export_key())
    pw = new_password()
    wrapped = strict.pepper_wrap(LEGACY["passlib_sha512_crypt"](pw))
    leaks.assert_no_secret_in("wrapped hash", wrapped)
    with pytest.raises(PasswordMismatchError) as info:
        strict.verify(wrapped, pw + "!")
    leaks.assert_no_secret_in("error", str(info.value))
