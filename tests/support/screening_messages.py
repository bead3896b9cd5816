"""The fraud screen's verdicts, as a factory: analytics publishes them, payments charges by them."""

import uuid

import factory

from analytics.events import OrderScreened, Verdict

SUSPICION = "Suspected fraud: 6 orders with this card in 600 s (at most 5)"


class OrderScreenedFactory(factory.Factory):
    """A verdict on an order: cleared by default; ``suspected=True`` for one never to charge."""

    class Meta:
        model = OrderScreened

    order_id = factory.LazyFunction(uuid.uuid4)
    verdict = Verdict.CLEARED
    rule = ""
    reason = ""

    class Params:
        suspected = factory.Trait(
            verdict=Verdict.SUSPECTED_FRAUD, rule="card_velocity", reason=SUSPICION
        )
