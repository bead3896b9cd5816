"""The messaging backbone: typed messages, an outbox, idempotent consumers, dead letters.

It knows no business domain. Apps define their events and commands with
``messaging.messages``, publish them with ``messaging.publishing``, declare
their handlers with ``messaging.consumers.handler`` and raise
``messaging.errors`` from them; features that follow every message connect to
``messaging.signals``. The README's "Layout" lists every module.
"""
