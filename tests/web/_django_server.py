"""A minimal Django project behind WSGIMiddleware under waitress, run as a subprocess.

Run as a script: prints ``PORT <n>`` once listening, serves until killed. Django
is configured in this process only, so it cannot clash with other tests.
"""

from __future__ import annotations

import sys

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("django home")


def login(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("logged in")
    response.set_cookie("sessionid", "opaque-django-session", samesite=None)
    return response


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def whoami(request: HttpRequest) -> HttpResponse:
    scheme = "https" if request.is_secure() else "http"
    return HttpResponse(f"{scheme} {request.META.get('REMOTE_ADDR')}")


urlpatterns = [
    path("", home),
    path("login", login),
    path("health", health),
    path("whoami", whoami),
]


def main() -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only-django-secret-key-not-used-for-anything",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],  # the enforcer's allow-list does the work
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from waitress.server import create_server

    from styku_crypto.web import HTTPSEnforcer, WSGIMiddleware

    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost"],
        exempt_paths=["/health"],
        trusted_proxies=["127.0.0.2"],
    )
    application = WSGIMiddleware(get_wsgi_application(), enforcer=enforcer)
    server = create_server(
        application, host="127.0.0.1", port=0, threads=2, clear_untrusted_proxy_headers=False
    )
    print(f"PORT {server.effective_port}", flush=True)  # type: ignore[union-attr]
    server.run()


if __name__ == "__main__":
    sys.path.insert(0, ".")
    main()
