"""Where email goes when no mail server is configured: one INFO line in the log per email.

Django's console backend prints the whole message to stdout, which a Celery
worker turns into WARNING lines. This backend logs who it is for, its subject
and its links (the order page's, for ours) through the ``notifications``
logger, at INFO; the body stays in the admin's mailbox (SentEmail).
"""

import logging
import re

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("notifications")

LINK = re.compile(r"https?://\S+")


class LoggingEmailBackend(BaseEmailBackend):
    """Send nothing: log each email's recipients, subject and links instead."""

    def send_messages(self, email_messages) -> int:
        for message in email_messages:
            links = LINK.findall(message.body)
            logger.info(
                'Email to %s: "%s" %s',
                ", ".join(message.recipients()),
                message.subject,
                " ".join(links) if links else "(no link)",
            )
        return len(email_messages)
