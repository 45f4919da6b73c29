"""The user object (VAST-WIRE §8, §17)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class UserRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    username: str
    email: str | None = None
    fullname: str | None = None
    is_admin: bool
    balance: float
    credit: float
    can_pay: bool
    has_billing: bool
    email_verified: bool
    host_agreement_accepted: bool
    created_at: float
    ssh_key: str | None = None
