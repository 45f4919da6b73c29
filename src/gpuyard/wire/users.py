"""The user object (VAST-WIRE §8, §17)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Quota(BaseModel):
    """A user's limits (null: none), set by the operator (``gpuyard admin quota``)."""

    max_gpus: int | None
    max_dph: float | None
    max_volume_gb: float | None


class InUse(BaseModel):
    """What counts against the quotas now: GPUs and $/hour of the instances running or
    starting, GB of volumes."""

    gpus: int
    dph: float
    volume_gb: float


class UserRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    username: str
    email: str | None = None
    fullname: str | None = None
    is_admin: bool
    balance: float = Field(description="credit granted minus every charge so far ($)")
    credit: float = Field(description="the same: what is left")
    can_pay: bool
    has_billing: bool
    email_verified: bool
    host_agreement_accepted: bool
    created_at: float
    ssh_key: str | None = None
    credit_enforced: bool = Field(description="whether this server needs credit to launch")
    billing_creditonly: bool
    total_charges: float = Field(description="$ charged so far")
    dph: float = Field(description="$/hour the account accrues now")
    quota: Quota
    in_use: InUse
