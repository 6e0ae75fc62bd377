"""Test helpers for code that uses styku_crypto.

.. danger::
   Everything here is for tests only: keys are generated quickly, reused within
   a factory, and written unencrypted to disk. Never use these certificates or
   keys outside a test suite.

:class:`CertificateFactory` makes a throwaway CA hierarchy and leaf certificates,
including the broken ones that ``trustme`` deliberately cannot make: expired, not
yet valid, wrong SAN, CN-only, 1024-bit RSA, over-long lifetime, missing EKU,
self-signed, SHA-1 signed, CA leaf, wrong chain order.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from styku_crypto._fs import atomic_write
from styku_crypto.exceptions import InvalidInputError

__all__ = ["CertificateFactory", "IssuedCertificate"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha1": hashes.SHA1,
    "md5": hashes.MD5,
}
_EKU = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}


# DER AlgorithmIdentifier of sha256WithRSAEncryption, and the last OID byte of
# the same-length legacy variants (sha1WithRSAEncryption = ...1.1.5, md5 = ...1.1.4).
_SHA256_RSA_ALGID = bytes.fromhex("300d06092a864886f70d01010b0500")
_LEGACY_RSA_OIDS = {"sha1": 0x05, "md5": 0x04}


def _legacy_rsa_sign(
    cert: x509.Certificate, signer: rsa.RSAPrivateKey, hash_name: str
) -> x509.Certificate:
    """Re-sign a sha256WithRSA certificate with SHA-1 or MD5.

    ``cryptography`` >= 47 refuses to build such certificates, but verifiers
    still meet them. The algorithm identifiers have the same length, so the
    DER is patched in place (both identifiers) and the signature (same length:
    the key size) recomputed over the patched TBS.
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    legacy_algid = _SHA256_RSA_ALGID[:-3] + bytes([_LEGACY_RSA_OIDS[hash_name]]) + b"\x05\x00"
    if der.count(_SHA256_RSA_ALGID) != 2:
        raise InvalidInputError("unexpected certificate layout for legacy re-signing")
    patched = der.replace(_SHA256_RSA_ALGID, legacy_algid)
    tbs = x509.load_der_x509_certificate(patched).tbs_certificate_bytes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        signature = signer.sign(tbs, padding.PKCS1v15(), _HASHES[hash_name]())
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise InvalidInputError(
            f"the local cryptography cannot sign with {hash_name}: {exc}"
        ) from None
    if len(signature) != len(cert.signature):
        raise InvalidInputError("unexpected signature length for legacy re-signing")
    return x509.load_der_x509_certificate(patched[: -len(signature)] + signature)


def _written(path: Path, data: bytes) -> Path:
    # 0600 from creation: a private key is never readable by others, not even briefly.
    atomic_write(path, data)
    return path


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate with its key and the chain a server would send.

    Attributes:
        cert: the leaf.
        key: its private key (test key: never reuse).
        chain: leaf first, then the intermediates (excluding the root).
    """

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...]

    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        """The leaf alone, PEM."""
        return _pem(self.cert)

    def chain_pem(self) -> bytes:
        """The chain, leaf first, PEM."""
        return b"".join(_pem(c) for c in self.chain)

    def reversed_chain(self) -> tuple[x509.Certificate, ...]:
        """The chain in the wrong order (issuers before the leaf)."""
        return tuple(reversed(self.chain))

    def write(self, directory: str | os.PathLike[str], name: str = "server") -> tuple[Path, Path]:
        """Write ``<name>.pem`` (chain) and ``<name>.key`` into *directory*; return both paths."""
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        certfile = _written(base / f"{name}.pem", self.chain_pem())
        keyfile = _written(base / f"{name}.key", self.key_pem())
        os.chmod(keyfile, 0o600)
        return certfile, keyfile

    def __repr__(self) -> str:
        return f"IssuedCertificate(subject={self.cert.subject.rfc4514_string()!r})"


class CertificateFactory:
    """A throwaway root CA and intermediate that issue (good and bad) test certificates.

    Args:
        key_type: the CA keys' type, ``"ecdsa"`` (P-256) or ``"rsa"`` (2048 bits).
        now: the reference time for validity periods (default: now, UTC).
        name: the CA's organisation name.

    Raises:
        InvalidInputError: *key_type* is neither ``"ecdsa"`` nor ``"rsa"``.
    """

    def __init__(
        self,
        *,
        key_type: str = "ecdsa",
        now: datetime | None = None,
        name: str = "styku-crypto test CA",
    ) -> None:
        if key_type not in ("ecdsa", "rsa"):
            raise InvalidInputError("key_type must be 'ecdsa' or 'rsa'")
        self.now = now if now is not None else datetime.now(UTC)
        self._keys: dict[str, PrivateKey] = {}
        self._legacy_intermediate: tuple[x509.Certificate, PrivateKey] | None = None
        root_key = self._key("rsa-2048" if key_type == "rsa" else "ecdsa-p256", fresh=True)
        self.root_key = root_key
        root_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root"),
            ]
        )
        self.root = self._build(
            subject=root_name,
            issuer=root_name,
            public_key=root_key.public_key(),
            signer=root_key,
            not_before=self.now - timedelta(days=1),
            not_after=self.now + timedelta(days=3650),
            ca=True,
            path_length=1,
            sans=None,
            eku=None,
            hash_name="sha256",
        )
        inter_key = self._key("rsa-2048" if key_type == "rsa" else "ecdsa-p256", fresh=True)
        self.intermediate_key = inter_key
        self.intermediate = self._build(
            subject=x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{name} intermediate"),
                ]
            ),
            issuer=root_name,
            public_key=inter_key.public_key(),
            signer=root_key,
            not_before=self.now - timedelta(days=1),
            not_after=self.now + timedelta(days=1825),
            ca=True,
            path_length=0,
            sans=None,
            eku=None,
            hash_name="sha256",
        )

    def __repr__(self) -> str:
        return f"CertificateFactory(root={self.root.subject.rfc4514_string()!r})"

    # ----------------------------------------------------------------- keys

    def _key(self, spec: str, *, fresh: bool = False) -> PrivateKey:
        if not fresh and spec in self._keys:
            return self._keys[spec]
        key: PrivateKey
        if spec.startswith("rsa-"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=int(spec[4:]))
        elif spec in {"ecdsa-p256", "ecdsa-p384", "ecdsa-p521"}:
            curves: dict[str, ec.EllipticCurve] = {
                "ecdsa-p256": ec.SECP256R1(),
                "ecdsa-p384": ec.SECP384R1(),
                "ecdsa-p521": ec.SECP521R1(),
            }
            key = ec.generate_private_key(curves[spec])
        elif spec == "ecdsa-secp256k1":
            key = ec.generate_private_key(ec.SECP256K1())
        elif spec == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise InvalidInputError(
                f"unknown key spec {spec!r}; use rsa-<bits>, ecdsa-p256/p384/p521, "
                "ecdsa-secp256k1 or ed25519"
            )
        if not fresh:
            self._keys[spec] = key
        return key

    # ----------------------------------------------------------------- building

    def _build(
        self,
        *,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: object,
        signer: PrivateKey,
        not_before: datetime,
        not_after: datetime,
        ca: bool,
        path_length: int | None,
        sans: Sequence[str] | None,
        eku: Sequence[str] | None,
        hash_name: str,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if issuer != subject or signer.public_key() != public_key:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        if ca:
            usage = x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            )  # fmt: skip
        else:
            is_rsa = isinstance(public_key, rsa.RSAPublicKey)
            usage = x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=is_rsa,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            )  # fmt: skip
        builder = builder.add_extension(usage, critical=True)
        if sans:
            names: list[x509.GeneralName] = []
            for entry in sans:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(entry)))
                except ValueError:
                    names.append(x509.DNSName(entry))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if eku:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([_EKU[e] for e in eku]), critical=False
            )
        if hash_name not in _HASHES:
            raise InvalidInputError(f"unknown hash {hash_name!r}; use {', '.join(_HASHES)}")
        algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else _HASHES[hash_name]()
        try:
            return builder.sign(signer, algorithm)  # type: ignore[arg-type]
        except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
            if hash_name in _LEGACY_RSA_OIDS and isinstance(signer, rsa.RSAPrivateKey):
                return _legacy_rsa_sign(builder.sign(signer, hashes.SHA256()), signer, hash_name)
            raise InvalidInputError(
                f"the local cryptography cannot sign with {hash_name}: {exc}"
            ) from None

    def issue(
        self,
        hostname: str = "localhost",
        *,
        sans: Sequence[str] | None = None,
        common_name: str | None = None,
        key: str = "ecdsa-p256",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        lifetime_days: int = 90,
        hash_name: str = "sha256",
        eku: Sequence[str] | None = ("serverAuth",),
        include_san: bool = True,
        ca: bool = False,
        self_signed: bool = False,
        via_intermediate: bool = True,
    ) -> IssuedCertificate:
        """Issue a leaf certificate; every keyword makes one property deliberately wrong.

        Args:
            hostname: the DNS name (or IP) put in the SAN and, by default, the CN.
            sans: SAN entries instead of ``[hostname]``.
            common_name: subject CN (default *hostname*).
            key: ``"ecdsa-p256"`` (default), ``"ecdsa-p384"``, ``"ecdsa-p521"``,
                ``"ecdsa-secp256k1"``, ``"rsa-<bits>"`` (e.g. ``"rsa-1024"``), ``"ed25519"``.
            not_before: start of validity (default: one hour before the factory's now).
            not_after: end of validity (default: *not_before* + *lifetime_days*).
            lifetime_days: validity length when *not_after* is not given.
            hash_name: signature hash: sha256, sha384, sha512, sha1, md5.
            eku: extended key usages (``None``: no EKU extension).
            include_san: ``False`` makes a CN-only certificate.
            ca: make the leaf a CA (basicConstraints CA=true).
            self_signed: sign the leaf with its own key.
            via_intermediate: issue from the intermediate (default) or the root.

        Raises:
            InvalidInputError: unknown key spec, or a hash the local library refuses.
        """
        leaf_key = self._key(key)
        start = not_before if not_before is not None else self.now - timedelta(hours=1)
        end = not_after if not_after is not None else start + timedelta(days=lifetime_days)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or hostname)])
        chain_rest: tuple[x509.Certificate, ...]
        if self_signed:
            issuer_name, signer, chain_rest = subject, leaf_key, ()
        elif via_intermediate:
            issuer_name, signer = self.intermediate.subject, self.intermediate_key
            chain_rest = (self.intermediate,)
        else:
            issuer_name, signer, chain_rest = self.root.subject, self.root_key, ()
        cert = self._build(
            subject=subject,
            issuer=issuer_name,
            public_key=leaf_key.public_key(),
            signer=signer,
            not_before=start,
            not_after=end,
            ca=ca,
            path_length=None,
            sans=(list(sans) if sans is not None else [hostname]) if include_san else None,
            eku=eku,
            hash_name=hash_name,
        )
        return IssuedCertificate(cert=cert, key=leaf_key, chain=(cert, *chain_rest))

    # ----------------------------------------------------------------- named negatives

    def good(self, hostname: str = "localhost", **kwargs: object) -> IssuedCertificate:
        """A certificate that passes the intermediate and modern profiles."""
        return self.issue(hostname, **kwargs)  # type: ignore[arg-type]

    def expired(self, hostname: str = "localhost") -> IssuedCertificate:
        """Expired yesterday."""
        return self.issue(
            hostname,
            not_before=self.now - timedelta(days=60),
            not_after=self.now - timedelta(days=1),
        )

    def not_yet_valid(self, hostname: str = "localhost") -> IssuedCertificate:
        """Valid from tomorrow."""
        return self.issue(hostname, not_before=self.now + timedelta(days=1), lifetime_days=60)

    def expiring_in(self, days: float, hostname: str = "localhost") -> IssuedCertificate:
        """Expires *days* from now."""
        return self.issue(
            hostname,
            not_before=self.now - timedelta(days=30),
            not_after=self.now + timedelta(days=days),
        )

    def wrong_san(self, hostname: str = "localhost") -> IssuedCertificate:
        """Names ``wrong.example`` only, with *hostname* as CN."""
        return self.issue(hostname, sans=["wrong.example"])

    def cn_only(self, hostname: str = "localhost") -> IssuedCertificate:
        """*hostname* in the subject CN, no SAN extension."""
        return self.issue(hostname, include_san=False)

    def rsa_1024(self, hostname: str = "localhost") -> IssuedCertificate:
        """A 1024-bit RSA key."""
        return self.issue(hostname, key="rsa-1024")

    def over_long(self, hostname: str = "localhost", days: int = 825) -> IssuedCertificate:
        """A validity period of *days* (default 825, over every Mozilla maximum)."""
        return self.issue(hostname, lifetime_days=days)

    def missing_eku(self, hostname: str = "localhost") -> IssuedCertificate:
        """No extendedKeyUsage extension."""
        return self.issue(hostname, eku=None)

    def self_signed(self, hostname: str = "localhost") -> IssuedCertificate:
        """Signed with its own key."""
        return self.issue(hostname, self_signed=True)

    def sha1_signed(
        self, hostname: str = "localhost", *, hash_name: str = "sha1"
    ) -> IssuedCertificate:
        """Signed with SHA-1 (or ``hash_name="md5"``) by an RSA intermediate of this root.

        Raises:
            InvalidInputError: the local library cannot produce the signature.
        """
        if self._legacy_intermediate is None:
            key = self._key("rsa-2048", fresh=True)
            cert = self._build(
                subject=x509.Name(
                    [x509.NameAttribute(NameOID.COMMON_NAME, "legacy RSA intermediate")]
                ),
                issuer=self.root.subject,
                public_key=key.public_key(),
                signer=self.root_key,
                not_before=self.now - timedelta(days=1),
                not_after=self.now + timedelta(days=1825),
                ca=True,
                path_length=0,
                sans=None,
                eku=None,
                hash_name="sha256",
            )
            self._legacy_intermediate = (cert, key)
        inter, inter_key = self._legacy_intermediate
        leaf_key = self._key("rsa-2048")
        start = self.now - timedelta(hours=1)
        leaf = self._build(
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]),
            issuer=inter.subject,
            public_key=leaf_key.public_key(),
            signer=inter_key,
            not_before=start,
            not_after=start + timedelta(days=90),
            ca=False,
            path_length=None,
            sans=[hostname],
            eku=("serverAuth",),
            hash_name=hash_name,
        )
        return IssuedCertificate(cert=leaf, key=leaf_key, chain=(leaf, inter))

    def client(self, name: str = "client") -> IssuedCertificate:
        """A client certificate (EKU clientAuth) for mTLS."""
        return self.issue(name, eku=("clientAuth",))

    # ----------------------------------------------------------------- files

    def ca_pem(self) -> bytes:
        """The root certificate, PEM (the trust anchor)."""
        return _pem(self.root)

    def write_ca(self, directory: str | os.PathLike[str], name: str = "ca.pem") -> Path:
        """Write the root certificate to *directory*/*name*; return the path."""
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        return _written(base / name, self.ca_pem())
