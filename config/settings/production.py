"""Production: everything in base, plus what `manage.py check --deploy` asks for.

SECRET_KEY and ALLOWED_HOSTS must come from the environment; the process
refuses to start with the development key.
"""

from django.core.exceptions import ImproperlyConfigured

from messaging.queues import queue_type_read

from .base import *  # noqa: F403
from .base import MESSAGING_DELIVERY_LIMIT, MESSAGING_QUEUES, task_queues
from .environment import env

DEBUG = False

SECRET_KEY = env.str("SECRET_KEY", default="")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured(
        "Set SECRET_KEY to a random string of at least 50 characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )
if not env.list("ALLOWED_HOSTS", default=[]):
    raise ImproperlyConfigured("Set ALLOWED_HOSTS to the host names this site is served on.")

# --- Queues ----------------------------------------------------------------

# Quorum queues, replicated across the cluster's nodes: production's default
# (base's is classic, for the embedded default and development).
MESSAGING_QUEUE_TYPE = queue_type_read(env.str("MESSAGING_QUEUE_TYPE", default="quorum"))
CELERY_TASK_QUEUES = task_queues(
    MESSAGING_QUEUES, queue_type=MESSAGING_QUEUE_TYPE, delivery_limit=MESSAGING_DELIVERY_LIMIT
)

# --- HTTPS -----------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# A supervisor's or load balancer's probe speaks plain HTTP to the server
# itself: /healthz and /readyz answer it rather than redirect it.
# So does Prometheus's scrape of /metrics.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
