"""The DPA Annex 2 evidence report: every control, its verdict and its evidence."""

from styku_crypto.report._build import build_report, run_report
from styku_crypto.report._config import ReportConfig, ReportConfigError, load_config, parse_config
from styku_crypto.report._controls import CONTROLS, ControlSpec
from styku_crypto.report._html import to_html
from styku_crypto.report._model import (
    SCHEMA,
    ControlResult,
    Evidence,
    EvidenceReport,
    Problem,
    SourceResult,
    Status,
    Waiver,
)
from styku_crypto.report._render import to_dict, to_json, to_markdown

__all__ = [
    "CONTROLS",
    "SCHEMA",
    "ControlResult",
    "ControlSpec",
    "Evidence",
    "EvidenceReport",
    "Problem",
    "ReportConfig",
    "ReportConfigError",
    "SourceResult",
    "Status",
    "Waiver",
    "build_report",
    "load_config",
    "parse_config",
    "run_report",
    "to_dict",
    "to_html",
    "to_json",
    "to_markdown",
]
