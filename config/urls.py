from django.contrib import admin
from django.urls import include, path

from health.views import ReadinessView, liveness
from metrics.views import metrics

from .api import api
from .views import no_icon

# The shop's own name on every admin page, rather than "Django administration".
admin.site.site_header = "eventshop operations"
admin.site.site_title = "eventshop admin"
admin.site.index_title = "Orders, payments, stock and the backbone"
# The index and the breadcrumbs lead everywhere the sidebar does; at 1,280 px its quarter of
# the width is what a list with its filters needs.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Probes for a supervisor or a load balancer (health/): no trailing slash, no redirect.
    path("healthz", liveness, name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    # Prometheus's scrape (metrics/): the web's counters and the shop's gauges.
    path("metrics", metrics, name="metrics"),
    path("staff/live/", include("live.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("favicon.ico", no_icon),
    path("", include("orders.urls")),
]

handler400 = "config.views.bad_request"
