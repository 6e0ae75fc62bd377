"""Issue 16 wording fixes: each message an operator reads is a sentence, not debug output."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto import tls
from styku_crypto._cli import main
from styku_crypto.testing import CertificateFactory
from styku_crypto.tls._certs import readable_error
from styku_crypto.tls._rules import RULES
from tests.tls.conftest import FINDING_MESSAGES, debug_text_in


def test_sha1_chain_message_has_no_rust_debug_text(tmp_path: Path) -> None:
    """A SHA-1 leaf under a trusted root: CERT-CHAIN-003 names the algorithm in words."""
    factory = CertificateFactory()
    ca = factory.write_ca(tmp_path)
    report = tls.check_certificate(
        list(factory.sha1_signed().chain), hostname="localhost", trust=ca
    )
    messages = [f.message for f in report.findings if f.rule_id == "CERT-CHAIN-003"]
    assert messages
    assert not debug_text_in(messages), messages
    assert any("rsa with sha1" in m.lower() for m in messages)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "validation failed: candidates exhausted: Forbidden signature algorithm: "
            "AlgorithmIdentifier { oid: DefinedByMarker(PhantomData<asn1::object_identifier::"
            "ObjectIdentifier>), params: RsaWithSha1(Some(())) }",
            "Forbidden signature algorithm: rsa with sha1",
        ),
        (
            "validation failed: certificate must be an X509v3 certificate (encountered "
            "processing <Certificate(subject=<Name(CN=weak.test)>, ...)>)",
            "certificate must be an X509v3 certificate",
        ),
        (
            "validation failed: candidates exhausted: all candidates exhausted with no "
            "interior errors",
            "no path to a trust anchor",
        ),
    ],
)
def test_readable_error_strips_debug_representations(raw: str, expected: str) -> None:
    """The verifier's Rust Debug output and Python reprs become plain words."""
    assert readable_error(ValueError(raw)) == expected


def test_cipher_rule_title_covers_older_versions() -> None:
    """TLS-CIPHER-001 no longer calls TLS 1.0/1.1 suites "a TLS 1.2 cipher suite"."""
    assert "TLS 1.2 or older" in RULES["TLS-CIPHER-001"].title
    assert "a TLS 1.2 cipher suite" not in RULES["TLS-CIPHER-001"].title


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "the input is empty"),
        (b"  \n", "the input is empty"),
        (b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "holds no parseable"),
        (b"\x30\x03\x02\x01", "neither PEM"),
    ],
)
def test_empty_or_broken_pem_is_a_plain_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, words: str
) -> None:
    """``tls check-cert`` on an empty or corrupt file: exit 2, no ParseError debug text."""
    path = tmp_path / "chain.pem"
    path.write_bytes(content)
    assert main(["tls", "check-cert", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "ParseError" not in err
    assert "{" not in err


def test_incomplete_chain_with_caller_trust_is_a_missing_intermediate() -> None:
    """With the caller's own roots, a chain missing its intermediate stays CERT-CHAIN-002."""
    factory = CertificateFactory()
    issued = factory.good()
    report = tls.check_certificate(
        [issued.cert], hostname="localhost", trust=[factory.root], now=factory.now
    )
    chain002 = [f.message for f in report.findings if f.rule_id == "CERT-CHAIN-002"]
    assert chain002
    assert "an intermediate is missing" in chain002[0]


def test_messages_so_far_carry_no_debug_text() -> None:
    """Every finding message produced by the TLS tests run before this one is clean.

    The session fixture in ``tests/tls/conftest.py`` repeats this check over
    the whole suite at the end.
    """
    assert not debug_text_in(FINDING_MESSAGES)


def test_certificate_policy_error_lives_in_exceptions_and_pickles() -> None:
    """Issue 20: one class, defined in exceptions.py (lazily), re-exported by tls, picklable."""
    import pickle
    import ssl

    from styku_crypto import exceptions

    cls = tls.CertificatePolicyError
    assert cls is exceptions.CertificatePolicyError
    assert cls.__module__ == "styku_crypto.exceptions"
    assert issubclass(cls, ssl.SSLCertVerificationError)
    assert issubclass(cls, exceptions.PolicyViolationError)
    again = pickle.loads(pickle.dumps(cls("leaf signed with a forbidden hash")))
    assert type(again) is cls
