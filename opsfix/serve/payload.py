"""Alertmanager's webhook payload (version 4), as pydantic models.

Unknown fields are tolerated (Alertmanager adds fields over time); a known field of the
wrong type is an error the receiver answers with 400. Only what opsfix uses is modelled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Alert", "Notification", "PayloadError", "parse"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1, max_length=64)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Notification(_Model):
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    externalURL: str = ""
    truncatedAlerts: int = Field(default=0, ge=0)  # cut by the receiver's max_alerts
    alerts: list[Alert] = Field(max_length=1000)


class PayloadError(ValueError):
    """The body is not a version-4 Alertmanager notification; the text says where."""


def parse(body: bytes) -> Notification:
    """The notification in `body` (JSON), or PayloadError naming the first bad field."""
    try:
        return Notification.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise PayloadError(f"{where}: {err['msg']}") from None
