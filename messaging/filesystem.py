"""kombu's file-system transport, with each message written whole before it can be read.

kombu writes a message file in place, so a consumer polling the folder can
take it while it is still being written, read half of it (or nothing) and
lose the message. Here a message is written under a name no consumer looks
for and renamed into place once complete: a rename is atomic, so a consumer
sees a whole message or none.

The channel makes its folders when it starts, so that the settings naming
them need not make them on import. A folder has no host: the transport has no
default one, so kombu does not warn that the URL names none.
"""

import os
import uuid
from time import monotonic

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

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Consumers take files named "<prefix>.<queue>.msg": ".part" is not one.
        partial = f"{final}.part"
        with open(partial, "wb") as file:
            file.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict:
        # kombu's virtual transports default to host "localhost" and warn,
        # every time a connection is described, that "filesystem://" names
        # none ("No hostname was supplied"): a folder needs no host.
        return {"port": self.default_port}
