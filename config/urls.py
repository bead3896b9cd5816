from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from .api import api

# The shop's own name on every admin page, rather than "Django administration".
admin.site.site_header = "eventshop operations"
admin.site.site_title = "eventshop admin"
admin.site.index_title = "Orders, payments, stock and the backbone"


def no_icon(request: HttpRequest) -> HttpResponse:
    """The pages name no icon, so browsers ask for /favicon.ico: none, rather than a logged 404."""
    return HttpResponse(status=204, headers={"Cache-Control": "max-age=86400"})


urlpatterns = [
    path("favicon.ico", no_icon),
    path("staff/live/", include("live.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("orders.urls")),
]

handler400 = "orders.views.bad_request"
