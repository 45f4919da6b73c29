"""Accounts: credit, balance, quotas, and stopping what runs when the credit is gone.

* **Balance** = credit the operator granted (``credit_entries``) − every charge so far
  (services/ledger/usage.py). It is computed, never stored, so it is right at any moment.
* **Credit** is enforced only when the server runs with ``--credit`` (``GPUYARD_CREDIT=1``;
  ``session.info``, see :func:`gpuyard.services.ledger.usage.configure`): then launching, starting a
  stopped instance and creating a volume need a positive balance (403 ``no_credit``), and
  :func:`stop_out_of_credit` (run periodically, gpuyard/accounting.py) stops the running
  instances of users whose balance reached zero, with ``status_msg`` "out of credit".
* **Quotas** (``user_quotas``; NULL = no limit): GPUs and $/hour of the instances that run or
  want to (``intended_status`` "running"), and GB of volumes. A launch, start, bid raise or
  volume that would go over one is refused (403 ``quota_exceeded``).

**Concurrency.** Every check runs in the write transaction that makes the change, after
:func:`lock_account` has locked the user's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
single writer already serializes), and before any other lock (instances, machines), so parallel
launches of one user are counted one after another and cannot slip past a limit together.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from gpuyard.errors import Forbidden, InvalidInput
from gpuyard.services.accounts.users import find_user, user_row
from gpuyard.services.ledger import usage
from gpuyard.store.db import lock_row, transaction
from gpuyard.store.models import CreditEntry, Instance, User, UserQuota, Volume

OUT_OF_CREDIT = "out of credit"
MAX_AMOUNT = 1e9
EPSILON = 1e-9
QUOTAS = ("max_gpus", "max_dph", "max_volume_gb")
# The limits as a plain row (every launch reads them, and most accounts have none: a miss of
# the ORM's get costs as much as a hit's row).
_QUOTA = select(*(UserQuota.__table__.c[name] for name in QUOTAS)).where(
    UserQuota.__table__.c.user_id == bindparam("user"))


def credit_enforced(session: Session) -> bool:
    return bool(session.info.get(usage.CREDIT, False))


def lock_account(session: Session, user: User) -> User:
    """Lock the user's row for this transaction: take it before any other lock."""
    locked = lock_row(session, User, user.id)
    assert locked is not None
    return locked


# -- balance -------------------------------------------------------------------------------------
def granted(session: Session, user_ids: list[int] | None = None) -> dict[int, float]:
    stmt = select(CreditEntry.user_id, func.sum(CreditEntry.amount)).group_by(CreditEntry.user_id)
    if user_ids is not None:
        stmt = stmt.where(CreditEntry.user_id.in_(user_ids))
    return {user_id: float(total or 0.0) for user_id, total in session.execute(stmt)}


def balances(session: Session, user_ids: list[int], at: float | None = None) -> dict[int, float]:
    """Credit granted minus charges up to ``at`` (the session's clock by default), per user."""
    at = usage.now(session) if at is None else at
    grants = granted(session, user_ids)
    charges = usage.charged(session, at, user_ids)
    return {u: grants.get(u, 0.0) - charges.get(u, 0.0) for u in user_ids}


def balance(session: Session, user_id: int, at: float | None = None) -> float:
    return balances(session, [user_id], at)[user_id]


def money(amount: float) -> str:
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def grant_credit(session: Session, username: str, amount: Any, note: str | None = None) -> dict[str, Any]:
    """``gpuyard admin credit NAME AMOUNT``: add credit (a negative amount takes some back)."""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        raise InvalidInput(f"the amount must be a number of dollars such as 25 or -5, not {amount!r}",
                           "invalid_amount") from None
    if not math.isfinite(value) or value == 0 or abs(value) > MAX_AMOUNT:
        raise InvalidInput(f"the amount must be a non-zero number of dollars of at most {MAX_AMOUNT:g} "
                           f"either way, not {amount!r}", "invalid_amount")
    if note is not None and len(note) > 500:
        raise InvalidInput(f"the note is {len(note)} characters long; the limit is 500", "too_long")
    user = lock_account(session, find_user(session, username))
    entry = CreditEntry(user_id=user.id, amount=value, at=usage.now(session), note=note or None)
    session.add(entry)
    session.flush()
    return {"id": entry.id, "user": user.username, "amount": value,
            "balance": balance(session, user.id), "enforced": credit_enforced(session)}


# -- quotas --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InUse:
    gpus: int
    dph: float
    volume_gb: float

    def as_dict(self) -> dict[str, Any]:
        return {"gpus": self.gpus, "dph": round(self.dph, 6), "volume_gb": self.volume_gb}


def in_use(session: Session, user_id: int) -> InUse:
    """What counts against the quotas: the GPUs and $/hour of the user's instances that run or
    want to (stopped ones do not), and the GB of their volumes."""
    wanted = list(session.scalars(select(Instance).where(
        Instance.owner_id == user_id, Instance.destroyed_at.is_(None),
        Instance.intended_status == "running")))
    volume_gb = session.scalar(select(func.sum(Volume.size)).where(
        Volume.owner_id == user_id, Volume.deleted_at.is_(None)))
    return InUse(gpus=sum(i.num_gpus for i in wanted), dph=sum(usage.instance_dph(i) for i in wanted),
                 volume_gb=float(volume_gb or 0.0))


def quota_row(quota: UserQuota | None) -> dict[str, Any]:
    return {name: getattr(quota, name) if quota is not None else None for name in QUOTAS}


UNSET: Any = object()


def _limit(value: Any, name: str, integer: bool) -> Any:
    if value is None:
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise InvalidInput(f"{name} must be {kind} (0 or more), not {value!r}", "invalid_quota") from None
    if (isinstance(number, float) and not math.isfinite(number)) or number < 0 or number > MAX_AMOUNT:
        raise InvalidInput(f"{name} must be 0 or more (at most {MAX_AMOUNT:g}), not {value!r}",
                           "invalid_quota")
    return number


def set_quota(session: Session, username: str, *, max_gpus: Any = UNSET, max_dph: Any = UNSET,
              max_volume_gb: Any = UNSET, clear: bool = False) -> dict[str, Any]:
    """``gpuyard admin quota``: ``clear`` removes every limit first; the limits given are set
    (None removes that one); the others stay. Returns the quota and the current use."""
    given = {name: value for name, value in
             (("max_gpus", max_gpus), ("max_dph", max_dph), ("max_volume_gb", max_volume_gb))
             if value is not UNSET}
    values = {name: _limit(value, name, name == "max_gpus") for name, value in given.items()}
    user = lock_account(session, find_user(session, username))
    quota = session.get(UserQuota, user.id)
    if (clear or values) and quota is None:
        quota = UserQuota(user_id=user.id, updated_at=time.time())
        session.add(quota)
    if quota is not None:
        if clear:
            for name in QUOTAS:
                setattr(quota, name, None)
        for name, value in values.items():
            setattr(quota, name, value)
        quota.updated_at = time.time()
        session.flush()
    return {"user": user.username, "quota": quota_row(quota), "in_use": in_use(session, user.id).as_dict()}


def show_quota(session: Session, username: str) -> dict[str, Any]:
    return set_quota(session, username)


def _gpus(n: float) -> str:
    return f"{n:g} GPU" + ("" if n == 1 else "s")


def check(session: Session, user: User, *, gpus: int = 0, dph: float = 0.0, volume_gb: float = 0.0,
          needs_credit: bool = True, action: str = "launch or start instances") -> None:
    """Refuse a change that adds ``gpus``, ``dph`` ($/hour) and ``volume_gb`` to what the user
    has, when it goes over a quota (403 ``quota_exceeded``) or, with credit enforced and
    ``needs_credit``, when the balance is not positive (403 ``no_credit``; ``action`` says what
    needs it). Locks the account first: call it before locking anything else."""
    lock_account(session, user)
    if needs_credit and credit_enforced(session):
        left = balance(session, user.id)
        if left <= EPSILON:
            raise Forbidden(
                f"your account has no credit left (balance {money(left)}): you need a positive "
                f"balance to {action}. Ask the operator for credit", "no_credit")
    if not (gpus > 0 or dph > EPSILON or volume_gb > EPSILON):
        return
    quota = session.execute(_QUOTA, {"user": user.id}).first()
    if quota is None or not (gpus > 0 or dph > EPSILON or volume_gb > EPSILON):
        return
    use = in_use(session, user.id)
    if quota.max_gpus is not None and gpus > 0 and use.gpus + gpus > quota.max_gpus:
        raise Forbidden(
            f"quota exceeded: max_gpus is {quota.max_gpus}; you use {_gpus(use.gpus)} (instances "
            f"running or starting) and this needs {gpus} more. Stop or destroy an instance, or ask "
            "the operator to raise the quota", "quota_exceeded")
    if quota.max_dph is not None and dph > EPSILON and use.dph + dph > quota.max_dph + EPSILON:
        raise Forbidden(
            f"quota exceeded: max_dph is ${quota.max_dph:g}/hour; your instances running or "
            f"starting cost ${use.dph:.4g}/hour and this adds ${dph:.4g}/hour. Stop an instance, "
            "pick a cheaper offer, or ask the operator to raise the quota", "quota_exceeded")
    if (quota.max_volume_gb is not None and volume_gb > EPSILON
            and use.volume_gb + volume_gb > quota.max_volume_gb + EPSILON):
        raise Forbidden(
            f"quota exceeded: max_volume_gb is {quota.max_volume_gb:g} GB; your volumes use "
            f"{use.volume_gb:g} GB and this adds {volume_gb:g} GB. Delete a volume, make it "
            "smaller, or ask the operator to raise the quota", "quota_exceeded")


# -- show user -------------------------------------------------------------------------------------
def account_row(session: Session, user: User) -> dict[str, Any]:
    """``GET /users/current``: the user, with balance, credit, quota and what counts against it."""
    at = usage.now(session)
    left = balance(session, user.id, at)
    enforced = credit_enforced(session)
    charges = usage.charged(session, at, [user.id]).get(user.id, 0.0)
    return {
        **user_row(user),
        "balance": round(left, 6),
        "credit": round(left, 6),
        "credit_enforced": enforced,
        "billing_creditonly": enforced,
        "can_pay": left > EPSILON if enforced else True,
        "total_charges": round(charges, 6),
        "dph": round(usage.accruing(session, user.id), 6),
        "quota": quota_row(session.get(UserQuota, user.id)),
        "in_use": in_use(session, user.id).as_dict(),
    }


# -- out of credit ---------------------------------------------------------------------------------
def out_of_credit_users(session: Session) -> list[int]:
    """Users with instances that run or want to and a balance at zero or below."""
    users = list(session.scalars(select(Instance.owner_id).where(
        Instance.destroyed_at.is_(None), Instance.intended_status == "running").distinct()))
    if not users:
        return []
    return sorted(u for u, left in balances(session, users).items() if left <= EPSILON)


def stop_for_credit(session: Session, user_id: int) -> list[int]:
    """Stop (not destroy) the user's instances that run or want to, when the balance is still
    at zero or below (checked again under the account's lock: credit may just have come in).
    Returns the ids of the instances (and preempted bids) the runtime must act on now."""
    from gpuyard.services.rentals.instances import set_state

    user = session.get(User, user_id)
    if user is None:
        return []
    lock_account(session, user)
    if balance(session, user.id) > EPSILON:
        return []
    running = list(session.scalars(select(Instance.id).where(
        Instance.owner_id == user.id, Instance.destroyed_at.is_(None),
        Instance.intended_status == "running").order_by(Instance.id)))
    if not running:
        return []
    outcome = set_state(session, user, running, "stopped")
    for inst in session.scalars(select(Instance).where(Instance.id.in_(running))):
        inst.stop_reason = inst.status_msg = OUT_OF_CREDIT
    return sorted(outcome.instance_ids)


def stop_out_of_credit(sessions: sessionmaker[Session]) -> list[int]:
    """One run of the out-of-credit job: each user is handled in a transaction of its own.
    Returns the instance ids the runtime must act on. Does nothing unless credit is enforced."""
    with transaction(sessions, write=False) as session:
        if not credit_enforced(session):
            return []
        users = out_of_credit_users(session)
    touched: list[int] = []
    for user_id in users:
        with transaction(sessions) as session:
            touched += stop_for_credit(session, user_id)
    return touched
