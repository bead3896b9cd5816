"""kombu's file-system transport, with each message written whole before it can be read.

kombu writes a message file in place, so a consumer polling the folder can
take it while it is still being written, read half of it (or nothing) and
lose the message. Here a message is written under a name no consumer looks
for and renamed into place once complete: a rename is atomic, so a consumer
sees a whole message or none.

The channel makes its folders when it starts, so that the settings naming
them need not make them on import. A folder has no host: the transport has no
default one, so kombu does not warn that the URL names none. A worker waiting
for messages stops waiting as soon as it is told to stop.
"""

import os
import uuid
from time import monotonic, sleep
from typing import Any

from celery.worker import state as worker_state
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        folders = [self.data_folder_in, self.data_folder_out, self.control_folder]
        if self.store_processed:
            folders.append(self.processed_folder)
        for folder in folders:
            os.makedirs(folder, exist_ok=True)

    # kombu's own file-system _put, whose stub already differs from AbstractChannel's.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Consumers take files named "<prefix>.<queue>.msg": ".part" is not one.
        partial = f"{final}.part"
        with open(partial, "wb") as file:
            file.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel

    # kombu's virtual Transport narrows the base's **kwargs the same way (its stubs ignore it too).
    def drain_events(self, connection, timeout=None):  # type: ignore[override]
        """Wait for a message as kombu does, polling the folder, but not once the worker stops.

        Celery runs a transport without an event loop, as this one is, in a
        blocking loop that looks for a warm shutdown only between waits of up
        to 2 s, and waits once more after it has seen one (celery.worker.loops.
        synloop): a worker would take up to 4 s just to start stopping, and
        honcho (make run) kills what has not stopped 5 s after a SIGTERM,
        losing the messages the worker had taken.
        """
        deadline = None if timeout is None else monotonic() + timeout
        while not _worker_is_stopping():
            try:
                # One look at the queues' folders, as kombu takes each polling_interval.
                return super().drain_events(connection, timeout=0)
            except TimeoutError:  # socket.timeout, as Celery expects it
                if deadline is not None and monotonic() >= deadline:
                    raise
                if self.polling_interval is not None:  # as kombu's own drain_events
                    sleep(self.polling_interval)
        raise TimeoutError()

    @property
    def default_connection_params(self) -> dict:
        # kombu's virtual transports default to host "localhost" and warn,
        # every time a connection is described, that "filesystem://" names
        # none ("No hostname was supplied"): a folder needs no host.
        return {"port": self.default_port}


def _worker_is_stopping() -> bool:
    # As celery.worker.state.maybe_shutdown reads them: 0 (EX_OK) means stop.
    flags = (worker_state.should_stop, worker_state.should_terminate)
    return any(flag is not None and flag is not False for flag in flags)
