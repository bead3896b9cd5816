"""The messaging backbone: typed messages, an outbox, idempotent consumers, dead letters.

It knows no business domain. Apps define their events and commands with
``messaging.messages``, publish them with ``messaging.publishing`` and react
to them with ``messaging.consumers``.
"""
