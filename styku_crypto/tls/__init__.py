"""TLS policy: Mozilla-derived profiles, hardened contexts, certificate and configuration checks.

Names are imported on first use (PEP 562), so ``import styku_crypto.tls`` and its
subpackages (``styku_crypto.tls.audit``) do not pay for :mod:`ssl`, ``cryptography.x509``
or the profile data until something needs them. ``__all__`` is the public API.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from styku_crypto.exceptions import CertificatePolicyError
    from styku_crypto.tls import profiles
    from styku_crypto.tls._certs import check_certificate
    from styku_crypto.tls._check import check_cipher_string, check_context
    from styku_crypto.tls._contexts import ContextFacts, context_facts
    from styku_crypto.tls._policy import Finding, Policy, Report, Waiver
    from styku_crypto.tls._policy_file import load_policy, parse_policy
    from styku_crypto.tls._pyopenssl_contexts import (
        pyopenssl_client_connection,
        pyopenssl_client_context,
        pyopenssl_server_context,
    )
    from styku_crypto.tls._registry import (
        CIPHER_SUITES,
        NAMED_GROUPS,
        CipherSuite,
        NamedGroup,
        cipher_by_code,
        cipher_by_name,
        group_by_code,
        group_by_name,
    )
    from styku_crypto.tls._rules import RULES, Rule, Severity
    from styku_crypto.tls._stdlib_contexts import client_context, server_context

__all__ = [
    "CIPHER_SUITES",
    "CertificatePolicyError",
    "CipherSuite",
    "ContextFacts",
    "Finding",
    "NAMED_GROUPS",
    "NamedGroup",
    "Policy",
    "RULES",
    "Report",
    "Rule",
    "Severity",
    "Waiver",
    "check_certificate",
    "check_cipher_string",
    "check_context",
    "cipher_by_code",
    "cipher_by_name",
    "client_context",
    "context_facts",
    "group_by_code",
    "group_by_name",
    "load_policy",
    "parse_policy",
    "profiles",
    "pyopenssl_client_connection",
    "pyopenssl_client_context",
    "pyopenssl_server_context",
    "server_context",
]

# Where each public name lives (the same modules as the TYPE_CHECKING imports above).
_HOME = {
    "CIPHER_SUITES": "_registry",
    "CertificatePolicyError": "styku_crypto.exceptions",
    "CipherSuite": "_registry",
    "ContextFacts": "_contexts",
    "Finding": "_policy",
    "NAMED_GROUPS": "_registry",
    "NamedGroup": "_registry",
    "Policy": "_policy",
    "RULES": "_rules",
    "Report": "_policy",
    "Rule": "_rules",
    "Severity": "_rules",
    "Waiver": "_policy",
    "check_certificate": "_certs",
    "check_cipher_string": "_check",
    "check_context": "_check",
    "cipher_by_code": "_registry",
    "cipher_by_name": "_registry",
    "client_context": "_stdlib_contexts",
    "context_facts": "_contexts",
    "group_by_code": "_registry",
    "group_by_name": "_registry",
    "load_policy": "_policy_file",
    "parse_policy": "_policy_file",
    "profiles": "",
    "pyopenssl_client_connection": "_pyopenssl_contexts",
    "pyopenssl_client_context": "_pyopenssl_contexts",
    "pyopenssl_server_context": "_pyopenssl_contexts",
    "server_context": "_stdlib_contexts",
}

if not TYPE_CHECKING:  # mypy sees the explicit imports above, not a catch-all

    def __getattr__(name: str) -> object:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        if home.startswith("styku_crypto."):
            value = import_module(home)
        else:
            value = import_module(f"{__name__}.{name}" if not home else f"{__name__}.{home}")
        if home:
            value = getattr(value, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
