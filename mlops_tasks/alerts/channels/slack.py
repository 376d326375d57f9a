"""The slack channel: a webhook in Slack's incoming-webhook format (text and blocks).

``MLOPS_WEBHOOK_FORMAT=slack`` makes every URL of ``MLOPS_WEBHOOK_URLS`` one; also
``MLOPS_ALERT_CHANNELS=slack=<url>``.
"""

from __future__ import annotations

from typing import Any

from ...timefmt import iso
from ..model import Alert
from .webhook import WebhookChannel

ICONS = {"critical": ":rotating_light:", "warning": ":warning:"}
MAX_FIELDS = 10  # Slack refuses a section with more


def payload(alert: Alert, now: float) -> dict[str, Any]:
    icon = ICONS.get(alert.severity, ":information_source:")
    if alert.status == "resolved":
        icon = ":white_check_mark:"
    title = f"{icon} [{alert.status.upper()}] {alert.message}"
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in sorted(alert.values.items())
              if not isinstance(v, (dict, list))][:MAX_FIELDS]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn",
                                                                  "text": title}}]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    return {"text": title, "blocks": blocks, "sent_at": iso(now)}


class SlackChannel(WebhookChannel):
    def payload(self, alert: Alert, receiver: str,  # noqa: ARG002 - WebhookChannel.payload
                now: float) -> dict[str, Any]:
        return payload(alert, now)


CHANNEL = SlackChannel()
