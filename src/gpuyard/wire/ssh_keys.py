"""SSH keys on the wire (VAST-WIRE §13.1, §13.2): ``{"ssh_key": "<public key text>"}`` bodies,
checked here (a file name, a private key or junk is a 400 before any transaction), and the rows
the answers carry."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, model_validator

from gpuyard import openssh_keys
from gpuyard.errors import InvalidInput
from gpuyard.wire.base import WireModel
from gpuyard.wire.types import Id

KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": openssh_keys.MAX_KEY_TEXT,
              "description": "one OpenSSH public key line, e.g. the text of ~/.ssh/id_ed25519.pub "
                             "(ed25519, ecdsa or rsa of at least 2048 bits)"}


def _key(value: Any) -> str:
    return openssh_keys.parse(value).line


#: A public key's text, normalised to ``type base64 [comment]``.
PublicKeyText = Annotated[str, BeforeValidator(_key), WithJsonSchema(KEY_SCHEMA)]


class _KeyBody(WireModel):
    unknown_word = "field"

    @model_validator(mode="before")
    @classmethod
    def _has_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "ssh_key" not in data:
            openssh_keys.parse(None)
        return data


class SshKeyCreate(_KeyBody):
    """``POST /api/v0/ssh/`` and ``POST /api/v0/instances/{id}/ssh/``: ``{"ssh_key": TEXT}``."""

    what = "ssh key"
    ssh_key: PublicKeyText = Field(description="the public key text")


class SshKeyUpdate(_KeyBody):
    """``PUT /api/v0/ssh/{id}/``: ``{"id": ID, "ssh_key": TEXT}`` (the id repeats the path's)."""

    what = "ssh key"
    id: Id | None = Field(None, description="the key's id again, as the official client sends it")
    ssh_key: PublicKeyText = Field(description="the new public key text")

    def check_id(self, path_id: int) -> None:
        if self.id is not None and self.id != path_id:
            raise InvalidInput(f"the body's id {self.id} differs from the key id {path_id} in the path; "
                               "send the same id or leave it out", "id_mismatch")


class SshKeyRow(BaseModel):
    id: int
    user_id: int
    public_key: str = Field(description="type base64 [comment]")
    key_type: str
    comment: str
    fingerprint: str = Field(description="SHA256:…, as ssh-keygen -lf prints it")
    created_at: float


class SshKeyList(BaseModel):
    success: bool
    ssh_keys: list[SshKeyRow] = Field(description="your keys, oldest first")


class SshKeyDone(BaseModel):
    success: bool
    msg: str
    key: SshKeyRow


class AttachedKeyRow(BaseModel):
    id: int = Field(description="the id detach ssh takes")
    instance_id: int
    public_key: str
    fingerprint: str
    created_at: float


class AttachedKeyDone(BaseModel):
    success: bool
    msg: str
    key: AttachedKeyRow
