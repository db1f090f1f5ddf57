"""Log alerts: one line on the ``slipway.alerts`` logger at the rule's severity.

Useful where a log pipeline already pages people, and as a channel that cannot fail.
"""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel, ConfigDict

from slipway.events.channels.base import Notification, Sent

log = logging.getLogger("slipway.alerts")

LEVELS = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class LogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogChannel:
    def __init__(self, config: LogConfig) -> None:
        self.config = config

    def send(self, notification: Notification) -> Sent:
        log.log(
            LEVELS.get(notification.severity, logging.WARNING),
            "%s %s",
            notification.title,
            json.dumps(notification.as_dict(), default=str, sort_keys=True),
        )
        return Sent(detail="logged")
