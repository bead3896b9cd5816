"""The streams' URLs, under /live/: what the ASGI server serves (``config.asgi``)."""

from django.urls import path

from . import streams

app_name = "live"

urlpatterns = [
    path("orders/<uuid:order_id>/stream", streams.order_stream, name="order_stream"),
    path("staff/stream", streams.staff_stream, name="staff_stream"),
]
