"""A simulated card gateway: the third-party processor the payments app talks to.

It behaves like a real one for the shop: it takes time, remembers every
charge by its idempotency key (asking twice never charges twice), and answers
documented test card numbers:

=====================  ==============================================
4242 4242 4242 4242    succeeds
4000 0000 0000 0002    declined (card_declined)
4000 0000 0000 9995    declined (insufficient_funds)
4000 0000 0000 0119    times out PAYMENT_GATEWAY_TIMEOUTS times per
                       charge, then succeeds (a transient error)
any other valid number succeeds
=====================  ==============================================

Card numbers never reach our own apps or the event log: the customer's
browser side (here, the order form and API) exchanges them for a token first.
"""
