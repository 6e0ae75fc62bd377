"""Rule lookup for the scanner.

Every rule the audit reports lives in the one catalogue,
:mod:`styku_crypto.tls._rules`: the policy rules it shares with the static
checks (protocols, suites, groups, DH size, compression, renegotiation, order,
HSTS, OCSP, certificates) and the ``AUDIT-*`` rules only a live scan can
observe (SSLv2, secure renegotiation, EMS, fallback SCSV, EC group size,
post-quantum groups, missing chain). Policy files can therefore override the
severity of, or waive, any of them.
"""

from __future__ import annotations

from styku_crypto.tls._rules import RULES, Rule

__all__ = ["AUDIT_RULE_IDS", "lookup"]

#: The ids of the rules only the scanner reports.
AUDIT_RULE_IDS = tuple(sorted(r for r in RULES if r.startswith("AUDIT-")))


def lookup(rule_id: str) -> Rule:
    """Return a rule of the catalogue.

    Raises:
        KeyError: an unknown id (a programming error).
    """
    return RULES[rule_id]
