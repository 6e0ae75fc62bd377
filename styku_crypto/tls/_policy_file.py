"""Reading policies: Mozilla's guideline JSON and our TOML/JSON policy files.

Two schemas are accepted:

* **Mozilla's** machine-readable guidelines (``{"version": ..., "configurations":
  {"modern": {...}, ...}}``). Optional keys may be missing (6.0 has no
  ``caddy``/``go`` cipher lists, no ``old`` profile); unknown keys are ignored
  because Mozilla adds keys between versions.
* **Ours** (``schema = "styku-tls-policy/1"``): a named overlay that ``extends``
  a shipped profile, overrides policy fields under ``[settings]``, sets rule
  severities under ``[rules]`` and lists time-boxed ``[[waivers]]``. Unknown keys
  are errors: a typo must not silently loosen a policy.

Every error is an :class:`~styku_crypto.exceptions.InvalidPolicyError` naming the
file, the line and the key at fault.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from styku_crypto.exceptions import InvalidPolicyError
from styku_crypto.tls._policy import Policy, Waiver
from styku_crypto.tls._registry import cipher_by_name
from styku_crypto.tls._rules import RULES, Severity

__all__ = [
    "POLICY_SCHEMA",
    "load_policy",
    "parse_policy",
    "policy_from_mozilla",
]

#: Version tag of our policy-file schema.
POLICY_SCHEMA = "styku-tls-policy/1"

_TOP_KEYS = frozenset({"schema", "name", "extends", "settings", "rules", "waivers", "description"})
_SETTABLE = frozenset(
    f.name
    for f in dataclasses.fields(Policy)
    if f.name not in {"name", "guideline_version", "profile", "severities", "waivers", "source"}
)
_WAIVER_KEYS = frozenset({"rule", "target", "reason", "expires"})
_MOZILLA_REQUIRED = (
    "tls_versions",
    "ciphersuites",
    "tls_curves",
    "certificate_types",
    "certificate_curves",
    "certificate_signatures",
    "maximum_certificate_lifespan",
    "hsts_min_age",
)


class _Located:
    """Finds the line of a key in the policy text, for error messages."""

    def __init__(self, text: str, source: str, fmt: str) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.fmt = fmt

    def line_of(self, key: str, *, occurrence: int = 0, after: int = 0) -> int | None:
        if self.fmt == "json":
            pattern = re.compile(r'"' + re.escape(key) + r'"\s*:')
        else:
            pattern = re.compile(
                r"""^\s*(\[\[?\s*)?(["']?)""" + re.escape(key) + r"""\2\s*(=|\]|\.)"""
            )
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if number <= after:
                continue
            if pattern.search(line):
                if seen == occurrence:
                    return number
                seen += 1
        return None

    def error(
        self, key: str, problem: str, *, occurrence: int = 0, after: int = 0
    ) -> InvalidPolicyError:
        line = self.line_of(key, occurrence=occurrence, after=after)
        where = f"{self.source}:{line}" if line else self.source
        return InvalidPolicyError(f"{where}: key {key!r}: {problem}")


def _version_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidPolicyError(f"guideline version must be a number, got {value!r}")
    if isinstance(value, int):
        return f"{value}.0"
    return str(value)


def policy_from_mozilla(
    document: Mapping[str, Any], profile: str, *, source: str = "<mozilla>"
) -> Policy:
    """Convert one configuration of a Mozilla guideline document into a :class:`Policy`.

    Args:
        document: the parsed guideline JSON.
        profile: ``"modern"``, ``"intermediate"`` or ``"old"``.
        source: recorded in :attr:`Policy.source` and in error messages.

    Raises:
        InvalidPolicyError: the profile is missing or a required key is absent or invalid.
    """
    located = _Located(json.dumps(document, indent=1), source, "json")
    configurations = document.get("configurations")
    if not isinstance(configurations, Mapping):
        raise InvalidPolicyError(f"{source}: key 'configurations': missing or not an object")
    if "version" not in document:
        raise InvalidPolicyError(f"{source}: key 'version': missing")
    version = _version_text(document["version"])
    config = configurations.get(profile)
    if not isinstance(config, Mapping):
        available = ", ".join(sorted(configurations))
        raise InvalidPolicyError(
            f"{source}: guideline {version} has no {profile!r} configuration "
            f"(available: {available})"
        )
    for key in _MOZILLA_REQUIRED:
        if key not in config:
            raise InvalidPolicyError(f"{source}: key {profile}.{key!r}: missing")
    ciphers = config.get("ciphers", {})
    if not isinstance(ciphers, Mapping):
        raise located.error("ciphers", "must be an object")
    iana = list(ciphers.get("iana", []))
    openssl = list(ciphers.get("openssl", []))
    try:
        if openssl and not iana:
            iana = [cipher_by_name(n).iana for n in openssl]
        if iana and not openssl:
            openssl = [cipher_by_name(n).openssl or n for n in iana]
    except ValueError as exc:
        raise InvalidPolicyError(f"{source}: key {profile}.'ciphers': {exc}") from None
    rsa_size = config.get("rsa_key_size")
    try:
        return Policy(
            name=f"mozilla-{version}-{profile}",
            guideline_version=version,
            profile=profile,
            protocols=tuple(config["tls_versions"]),
            tls12_ciphers=tuple(iana),
            tls12_ciphers_openssl=tuple(openssl),
            tls13_suites=tuple(config["ciphersuites"]),
            groups=tuple(config["tls_curves"]),
            certificate_types=tuple(config["certificate_types"]),
            certificate_curves=tuple(config["certificate_curves"]),
            certificate_signatures=tuple(config["certificate_signatures"]),
            rsa_min_bits=int(rsa_size) if rsa_size else 2048,
            dh_param_size=config.get("dh_param_size"),
            ecdh_param_size=config.get("ecdh_param_size"),
            max_certificate_lifetime_days=int(config["maximum_certificate_lifespan"]),
            recommended_certificate_lifetime_days=config.get("recommended_certificate_lifespan"),
            hsts_min_age=int(config["hsts_min_age"]),
            ocsp_staple=bool(config.get("ocsp_staple", False)),
            server_preferred_order=bool(config.get("server_preferred_order", False)),
            oldest_clients=tuple(config.get("oldest_clients", ())),
            source=source,
        )
    except InvalidPolicyError as exc:
        raise InvalidPolicyError(f"{source}: {profile}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidPolicyError(f"{source}: {profile}: invalid value: {exc}") from None


def _decode(text: str, fmt: str, source: str) -> dict[str, Any]:
    lines = text.splitlines()

    def key_on(line_no: int) -> str:
        if 1 <= line_no <= len(lines):
            match = re.match(r"""\s*["']?([\w.\-]+)["']?\s*[=:]""", lines[line_no - 1])
            if match:
                return f" key {match.group(1)!r}:"
        return ""

    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidPolicyError(
                f"{source}:{exc.lineno}:{key_on(exc.lineno)} invalid JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            line_no = int(match.group(1)) if match else 0
            where = f"{source}:{line_no}:" if line_no else f"{source}:"
            raise InvalidPolicyError(f"{where}{key_on(line_no)} invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidPolicyError(f"{source}: a policy file must hold an object/table")
    return data


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"not a date: {value!r}")


def parse_policy(
    text: str,
    *,
    fmt: str = "toml",
    source: str = "<policy>",
    profile: str = "intermediate",
) -> Policy:
    """Parse a policy document.

    Args:
        text: the file's text.
        fmt: ``"toml"`` or ``"json"``.
        source: a name for error messages (usually the path).
        profile: which configuration to take from a Mozilla guideline document.

    Returns:
        The policy; for our schema, the overlay applied to the profile it extends.

    Raises:
        InvalidPolicyError: syntax or schema error, naming the line and key.
    """
    if fmt not in {"toml", "json"}:
        raise InvalidPolicyError(f"unknown policy format {fmt!r}; expected toml or json")
    data = _decode(text, fmt, source)
    located = _Located(text, source, fmt)
    if "configurations" in data:
        try:
            return policy_from_mozilla(data, profile, source=source)
        except InvalidPolicyError as exc:
            # Re-anchor the message on the real file's lines where we can.
            match = re.search(r"key [\w.]*'?(\w+)'?", str(exc))
            line = located.line_of(match.group(1)) if match else None
            if line:
                raise InvalidPolicyError(f"{source}:{line}: {exc}") from None
            raise
    return _parse_overlay(data, located)


def _parse_overlay(data: Mapping[str, Any], located: _Located) -> Policy:
    """Build the policy a file describes: header, settings, rule severities, waivers."""
    name, base = _overlay_header(data, located)
    changes = _overlay_settings(data, located)
    severities = _overlay_severities(data, located, base)
    waivers = _overlay_waivers(data, located, base)
    try:
        return base.replace(
            name=name,
            profile="custom",
            severities=tuple(sorted(severities.items())),
            waivers=tuple(waivers),
            source=located.source,
            **changes,
        )
    except InvalidPolicyError as exc:
        field_name = str(exc).split(":", 1)[0].strip()
        raise located.error(field_name, str(exc)) from None


def _overlay_header(data: Mapping[str, Any], located: _Located) -> tuple[str, Policy]:
    """Top-level keys, ``schema``, ``name`` and the ``extends`` base profile."""
    from styku_crypto.tls import profiles

    for key in data:
        if key not in _TOP_KEYS:
            raise located.error(
                key, f"unknown top-level key (allowed: {', '.join(sorted(_TOP_KEYS))})"
            )
    schema = data.get("schema")
    if schema != POLICY_SCHEMA:
        raise located.error("schema", f"must be {POLICY_SCHEMA!r}, got {schema!r}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise located.error("name", "must be a non-empty string")
    extends = data.get("extends", "intermediate")
    if not isinstance(extends, str):
        raise located.error("extends", "must be a profile name")
    try:
        return name.strip(), profiles.by_name(extends)
    except InvalidPolicyError as exc:
        raise located.error("extends", str(exc)) from None


def _overlay_settings(data: Mapping[str, Any], located: _Located) -> dict[str, Any]:
    """``[settings]``: known policy fields only; cipher names normalised both ways."""
    changes: dict[str, Any] = {}
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        raise located.error("settings", "must be a table/object")
    for key, value in settings.items():
        if key not in _SETTABLE:
            raise located.error(key, f"unknown setting (allowed: {', '.join(sorted(_SETTABLE))})")
        changes[key] = tuple(value) if isinstance(value, list) else value
    if "tls12_ciphers" in changes and "tls12_ciphers_openssl" not in changes:
        try:
            changes["tls12_ciphers"] = tuple(
                cipher_by_name(n).iana for n in changes["tls12_ciphers"]
            )
            changes["tls12_ciphers_openssl"] = tuple(
                cipher_by_name(n).openssl or n for n in changes["tls12_ciphers"]
            )
        except (ValueError, TypeError) as exc:
            raise located.error("tls12_ciphers", str(exc)) from None
    elif "tls12_ciphers_openssl" in changes and "tls12_ciphers" not in changes:
        try:
            changes["tls12_ciphers"] = tuple(
                cipher_by_name(n).iana for n in changes["tls12_ciphers_openssl"]
            )
        except (ValueError, TypeError) as exc:
            raise located.error("tls12_ciphers_openssl", str(exc)) from None
    return changes


def _overlay_severities(
    data: Mapping[str, Any], located: _Located, base: Policy
) -> dict[str, Severity]:
    """``[rules]``: rule id = severity, over the base profile's severities."""
    severities = dict(base.severities)
    rules = data.get("rules", {})
    if not isinstance(rules, Mapping):
        raise located.error("rules", "must be a table/object of rule id = severity")
    for rule_id, value in rules.items():
        if rule_id not in RULES:
            raise located.error(rule_id, "unknown rule id")
        if not isinstance(value, str):
            raise located.error(rule_id, "severity must be off, info, warning or error")
        try:
            severities[rule_id] = Severity.parse(value)
        except InvalidPolicyError as exc:
            raise located.error(rule_id, str(exc)) from None
    return severities


def _overlay_waivers(data: Mapping[str, Any], located: _Located, base: Policy) -> list[Waiver]:
    """``[[waivers]]``: each with rule, target, reason and expiry, appended to the base's."""
    waivers = list(base.waivers)
    raw_waivers = data.get("waivers", [])
    if not isinstance(raw_waivers, list):
        raise located.error("waivers", "must be an array of tables/objects")
    for index, raw in enumerate(raw_waivers):
        anchor = located.line_of("waivers", occurrence=index if located.fmt == "toml" else 0) or 0
        if not isinstance(raw, Mapping):
            raise located.error("waivers", f"entry {index + 1} must be a table/object")
        for key in raw:
            if key not in _WAIVER_KEYS:
                raise located.error(key, f"unknown waiver key in waiver {index + 1}", after=anchor)
        for key in sorted(_WAIVER_KEYS):
            if key not in raw:
                raise located.error(
                    "waivers", f"waiver {index + 1} lacks {key!r}", occurrence=index
                )
        if raw["rule"] not in RULES:
            raise located.error("rule", f"unknown rule id {raw['rule']!r}", after=anchor)
        try:
            expires = _as_date(raw["expires"])
        except ValueError as exc:
            raise located.error("expires", f"waiver {index + 1}: {exc}", after=anchor) from None
        try:
            waivers.append(
                Waiver(
                    rule=str(raw["rule"]),
                    target=str(raw["target"]),
                    reason=str(raw["reason"]),
                    expires=expires,
                )
            )
        except InvalidPolicyError as exc:
            raise located.error("reason", str(exc), after=anchor) from None
    return waivers


def load_policy(name_or_path: str | Path, *, profile: str = "intermediate") -> Policy:
    """Load a policy by profile name or from a file.

    Args:
        name_or_path: a shipped profile name (``"intermediate"``,
            ``"mozilla-5.7-old"``...) or the path of a ``.toml``/``.json`` file in
            Mozilla's schema or ours.
        profile: which configuration to take from a Mozilla guideline file.

    Raises:
        InvalidPolicyError: unknown profile, unreadable or invalid file.
    """
    from styku_crypto.tls import profiles

    if isinstance(name_or_path, str) and profiles.is_profile_name(name_or_path):
        return profiles.by_name(name_or_path)
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidPolicyError(
            f"{path}: no such policy file, and not a profile name "
            f"(profiles: {', '.join(profiles.names())})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicyError(f"{path}: cannot read policy file: {exc}") from None
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    return parse_policy(text, fmt=fmt, source=str(path), profile=profile)


def generate_profile_data(directory: Path) -> dict[str, Any]:
    """Convert Mozilla's guideline files in *directory* into the shipped data format."""
    out: list[dict[str, Any]] = []
    for version in ("6.0", "5.8", "5.7"):
        path = directory / f"{version}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        for profile in ("modern", "intermediate", "old"):
            if profile in document["configurations"]:
                policy = policy_from_mozilla(
                    document, profile, source=f"mozilla-guidelines/{version}.json#{profile}"
                )
                out.append(policy.to_dict())
    return {
        "format": "styku-tls-profiles/1",
        "origin": "Mozilla Server Side TLS guidelines (ssl-config-generator, MPL-2.0)",
        "profiles": out,
    }


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    import sys

    target = Path(__file__).parent / "_data" / "mozilla_profiles.json"
    data = generate_profile_data(Path(sys.argv[1]))
    target.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(data['profiles'])} profiles to {target}")
