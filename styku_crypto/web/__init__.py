"""HTTPS enforcement for ASGI and WSGI apps, and login helpers (see ``docs/web.md``)."""

from styku_crypto.web._asgi import CLIENT_CERT_SCOPE_KEY, ASGIMiddleware
from styku_crypto.web._check import WebCheckReport, check_url
from styku_crypto.web._clientcert import ClientCertPolicy, ClientCertResult
from styku_crypto.web._config import HTTPSEnforcer
from styku_crypto.web._cookies import CookiePolicy
from styku_crypto.web._hsts import HSTS
from styku_crypto.web._login import LoginGuard, LoginResult, LoginThrottledError
from styku_crypto.web._wsgi import CLIENT_CERT_ENVIRON_KEY, WSGIMiddleware

__all__ = [
    "ASGIMiddleware",
    "CLIENT_CERT_ENVIRON_KEY",
    "CLIENT_CERT_SCOPE_KEY",
    "ClientCertPolicy",
    "ClientCertResult",
    "CookiePolicy",
    "HSTS",
    "HTTPSEnforcer",
    "LoginGuard",
    "LoginResult",
    "LoginThrottledError",
    "WSGIMiddleware",
    "WebCheckReport",
    "check_url",
]
