"""TLS policy: Mozilla-derived profiles, hardened contexts, certificate and configuration checks."""

from styku_crypto.tls import profiles
from styku_crypto.tls._certs import check_certificate
from styku_crypto.tls._check import check_cipher_string, check_context
from styku_crypto.tls._contexts import (
    CertificatePolicyError,
    ContextFacts,
    client_context,
    context_facts,
    pyopenssl_client_connection,
    pyopenssl_client_context,
    pyopenssl_server_context,
    server_context,
)
from styku_crypto.tls._policy import Finding, Policy, Report, Waiver
from styku_crypto.tls._policy_file import load_policy, parse_policy
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
