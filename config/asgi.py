"""ASGI entry point for the live streams only: ``uvicorn config.asgi:application``.

It runs beside the WSGI server (``config.wsgi``), which keeps every page and
the API: a proxy sends ``/live/`` here (or the pages reach it directly at
LIVE_STREAM_URL). Any other path is a 404, so that nothing is served twice by
two servers that could answer it differently. ``live.asgi`` says why the
streams are not Django views.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)

from live.asgi import application as streams  # noqa: E402  (after django.setup())

STREAMS = "/live/"


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http" and scope["path"].startswith(STREAMS):
        await streams(scope, receive, send)
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"Not found: this server streams /live/"})
    else:  # a WebSocket: the streams are Server-Sent Events
        await send({"type": "websocket.close", "code": 1008})


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
