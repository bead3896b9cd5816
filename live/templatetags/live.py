"""``{% load live %}``: where a page opens its stream, or nothing when nothing is pushed."""

from django import template
from django.conf import settings

from live.streams import order_stream_path

register = template.Library()


@register.simple_tag
def order_stream_url(order_id) -> str:
    """The order's stream on the ASGI server; empty without REDIS_URL (the page polls)."""
    if not settings.REDIS_URL:
        return ""
    return settings.LIVE_STREAM_URL + order_stream_path(order_id)
