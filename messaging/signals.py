"""The signal that carries committed messages to the apps that consume them.

Sent after the producer's transaction committed (and again by the relay for
anything not yet dispatched), with ``sender`` set to the message class and
``envelope`` to the Envelope. Apps connect to it through
``messaging.consumers.subscribe`` from their ``AppConfig.ready()``; the
producer never knows who they are.
"""

from django.dispatch import Signal

message_committed = Signal()
