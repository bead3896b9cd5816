from django.contrib import admin
from django.urls import include, path

from .api import api

urlpatterns = [
    path("staff/live/", include("live.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("orders.urls")),
]

handler400 = "orders.views.bad_request"
