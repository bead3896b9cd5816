from django.contrib import admin
from django.urls import include, path

from .api import api
from .views import no_icon

# The shop's own name on every admin page, rather than "Django administration".
admin.site.site_header = "eventshop operations"
admin.site.site_title = "eventshop admin"
admin.site.index_title = "Orders, payments, stock and the backbone"

urlpatterns = [
    path("staff/live/", include("live.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("favicon.ico", no_icon),
    path("", include("orders.urls")),
]

handler400 = "orders.views.bad_request"
