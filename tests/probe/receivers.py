from messaging.consumers import subscribe

from . import handlers

subscribe(handlers.record_ping)
subscribe(handlers.echo_ping)
subscribe(handlers.record_echo)
subscribe(handlers.fail_while_switched_on)
subscribe(handlers.record_probe)
subscribe(handlers.fanned_record)
subscribe(handlers.fanned_record_again)
subscribe(handlers.fanned_fail_while_switched_on)
