"""Account secrets (env vars, VAST-WIRE §14): named values a user keeps once and every new
instance of theirs gets in its container env.

* Values are encrypted at rest (the ``EncryptedText`` column type, key outside the database);
  they are shown to their owner only and never written to a log.
* Instance rows never hold a value. A launch records the *names* that apply (the secrets whose
  name the request's and the template's env do not already set: a secret never overrides them)
  in the instance's launch JSON; the values are read, and decrypted, only when the reconciler
  creates the container (:func:`with_secrets`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.envspec import EnvSpec
from gpuyard.errors import Conflict, InvalidInput, NotFound
from gpuyard.runtimes.base import LaunchSpec
from gpuyard.store.models import Secret, User
from gpuyard.wire.secrets import SecretDelete, SecretWrite

MAX_SECRETS = 100  # per account
MASK = "*****"


def list_secrets(session: Session, user: User) -> dict[str, str]:
    """The user's secrets, name → value, by name."""
    rows = session.execute(select(Secret.name, Secret.value).where(Secret.user_id == user.id)
                           .order_by(Secret.name))
    return {name: value for name, value in rows}


_NAMES = select(Secret.name).where(Secret.user_id == bindparam("user")).order_by(Secret.name)


def names(session: Session, user_id: int) -> list[str]:
    """The names of a user's secrets (nothing is decrypted; every launch reads them)."""
    return list(session.scalars(_NAMES, {"user": user_id}))


def _find(session: Session, user: User, name: str) -> Secret:
    row = session.scalar(select(Secret).where(Secret.user_id == user.id, Secret.name == name)
                         .with_for_update())
    if row is None:
        raise NotFound(f"you have no secret named {name}; create it with 'create env-var {name} VALUE' "
                       "(POST /api/v0/secrets/)", "secret_not_found")
    return row


def create_secret(session: Session, user: User, body: SecretWrite) -> dict[str, Any]:
    exists = Conflict(f"a secret named {body.key} already exists; change its value with 'update env-var "
                      f"{body.key} VALUE' (PUT /api/v0/secrets/)", "secret_exists")
    if session.scalar(select(Secret.id).where(Secret.user_id == user.id, Secret.name == body.key)):
        raise exists
    count = session.scalar(select(func.count()).select_from(Secret).where(Secret.user_id == user.id))
    if (count or 0) >= MAX_SECRETS:
        raise InvalidInput(f"you have {count} secrets, the most an account may keep; delete one first",
                           "too_many_secrets")
    now = time.time()
    try:
        with session.begin_nested():
            session.add(Secret(user_id=user.id, name=body.key, value=body.value, created_at=now,
                               updated_at=now))
    except IntegrityError:  # made by a concurrent request meanwhile
        raise exists from None
    return {"success": True, "key": body.key,
            "msg": f"Environment variable {body.key} created: new instances get it in their env"}


def update_secret(session: Session, user: User, body: SecretWrite) -> dict[str, Any]:
    row = _find(session, user, body.key)
    row.value = body.value
    row.updated_at = time.time()
    return {"success": True, "key": body.key,
            "msg": f"Environment variable {body.key} updated: containers created from now on get "
                   "the new value"}


def delete_secret(session: Session, user: User, body: SecretDelete) -> dict[str, Any]:
    row = _find(session, user, body.key)
    session.execute(delete(Secret).where(Secret.id == row.id))
    return {"success": True, "key": body.key,
            "msg": f"Environment variable {body.key} deleted: containers created from now on do "
                   "not get it"}


# -- launches ----------------------------------------------------------------------------------
def applying(account: Iterable[str], env: EnvSpec) -> list[str]:
    """The secret names a launch gets: every one whose name the merged env (the request's and
    the template's) does not set already."""
    return sorted(name for name in account if name not in env.variables)


def for_launch(session: Session, user: User, env: EnvSpec) -> list[str]:
    """The names of ``user``'s secrets a launch with the merged ``env`` gets (recorded in the
    instance's launch JSON as ``secrets``)."""
    return applying(names(session, user.id), env)


def masked(secret_names: Iterable[str]) -> dict[str, str]:
    """Secret names with masked values, as a dry run shows them."""
    return {name: MASK for name in secret_names}


class SecretEnv(dict):
    """A container env whose ``repr`` hides the values of account secrets (a log line showing a
    launch spec must not show them)."""

    def __init__(self, *args: Any, hidden: Iterable[str] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hidden = frozenset(hidden)

    def __repr__(self) -> str:
        return repr({k: (MASK if k in self.hidden else v) for k, v in self.items()})


def wanted(spec: LaunchSpec, names: Iterable[str]) -> list[str]:
    """The secrets of ``names`` (those the launch recorded) that ``spec``'s env does not set
    already: a variable the spec sets keeps its value."""
    return [n for n in names if n not in spec.env]


def with_secrets(session: Session, spec: LaunchSpec, names: Iterable[str]) -> LaunchSpec:
    """``spec`` with its owner's secrets of ``names`` (from :func:`wanted`), at their current
    values, added to the env, for the container about to be created; a secret deleted since is
    left out."""
    names = list(names)
    if not names:
        return spec
    values = dict(session.execute(select(Secret.name, Secret.value).where(
        Secret.user_id == spec.owner_id, Secret.name.in_(names))).all())
    if not values:
        return spec
    return dataclasses.replace(spec, env=SecretEnv({**values, **spec.env}, hidden=values))
