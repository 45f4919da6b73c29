"""``from gpuyard import VastAI``: the seed's SDK, method for method, against a gpuyard server.

Every method returns the parsed JSON the server sent (search methods return the list), and
raises a typed :class:`gpuyard.errors.GpuyardError` carrying the server's ``msg`` on failure.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from gpuyard.query import OFFER_FIELDS, TEMPLATE_FIELDS, parse_order, parse_query
from gpuyard.sdk.access import AccessMixin
from gpuyard.sdk.accounts import AccountsMixin
from gpuyard.sdk.billing import BillingMixin
from gpuyard.sdk.config import resolve_api_key, resolve_url
from gpuyard.sdk.http import Transport
from gpuyard.sdk.instances import InstancesMixin
from gpuyard.sdk.machines import MachinesMixin
from gpuyard.sdk.offers import OffersMixin
from gpuyard.template_flags import fields_from_flags, login_repo

DEFAULT_FILTERS = {"verified": {"eq": True}, "external": {"eq": False}, "rentable": {"eq": True}}


def _search_params(search_params: str | None, no_default: bool) -> dict[str, Any]:
    """The template's offer filters, seeded with the defaults exactly like the official SDK."""
    defaults = {} if no_default or search_params is None else DEFAULT_FILTERS
    if search_params is None:
        return dict(defaults)
    return parse_query(search_params, OFFER_FIELDS, defaults)


def _with_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The server's answer, plus the template's ``id`` and ``hash_id`` at the top level."""
    template = body.get("template") if isinstance(body, dict) else None
    if isinstance(template, dict):
        body = {**body, "id": template.get("id"), "hash_id": template.get("hash_id")}
    return body


def _passed_only(prototype: Callable[..., Any]) -> Callable[[Callable[..., Any]], Any]:
    """Give a method ``prototype``'s signature, and hand the body only the arguments the caller
    actually passed (so defaults such as ``ssh=False`` never overwrite stored values)."""
    sig = inspect.signature(prototype)

    def decorate(impl: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(prototype)
        def method(self: VastAI, *args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(self, *args, **kwargs)
            passed = dict(bound.arguments)
            passed.pop("self")
            return impl(self, passed)

        return method

    return decorate


def _update_template_signature(
    self,
    HASH_ID: str | None = None,  # noqa: N803 - the seed's parameter name
    name: str | None = None,
    image: str | None = None,
    env: str | None = None,
    onstart_cmd: str | None = None,
    search_params: str | None = None,
    disk: float | None = None,
    ssh: bool = False,
    direct: bool = False,
    jupyter: bool = False,
    *,
    hash_id: str | None = None,
    image_tag: str | None = None,
    login: str | None = None,
    jupyter_dir: str | None = None,
    jupyter_lab: bool = False,
    no_default: bool = False,
    disk_space: float | None = None,
    readme: str | None = None,
    hide_readme: bool = False,
    desc: str | None = None,
    public: bool = False,
    href: str | None = None,
    repo: str | None = None,
    extra_filters: dict | None = None,
) -> dict:
    """Update a template: only the parameters you pass change; the template keeps the rest.

    The edit makes a new version with a new ``hash_id`` (the numeric ``id`` stays); use the
    ``hash_id`` of the returned template from now on.
    """


class VastAI(InstancesMixin, OffersMixin, AccountsMixin, BillingMixin, AccessMixin,
             MachinesMixin):
    """A client for a gpuyard server with the official ``VastAI`` SDK's method signatures.

    Templates are here; instances are in :mod:`gpuyard.sdk.instances`, offers and volumes in
    :mod:`gpuyard.sdk.offers`, secrets and API keys in :mod:`gpuyard.sdk.accounts`, invoices
    and usage in :mod:`gpuyard.sdk.billing`, SSH keys and ssh/scp URLs in :mod:`gpuyard.sdk.access`,
    the host side in :mod:`gpuyard.sdk.machines`."""

    def __init__(self, api_key: str | None = None, server_url: str | None = None, **_ignored: Any):
        self.api_key = resolve_api_key(api_key)
        self.server_url = resolve_url(server_url)
        self._http = Transport(self.server_url, self.api_key)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VastAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- templates ------------------------------------------------------------------------

    def create_template(
        self,
        name: str | None = None,
        image: str | None = None,
        image_tag: str | None = None,
        login: str | None = None,
        env: str | None = None,
        ssh: bool = False,
        jupyter: bool = False,
        direct: bool = False,
        jupyter_dir: str | None = None,
        jupyter_lab: bool = False,
        onstart_cmd: str | None = None,
        search_params: str | None = None,
        disk_space: str | float | None = None,
        *,
        href: str | None = None,
        repo: str | None = None,
        no_default: bool = False,
        readme: str | None = None,
        hide_readme: bool = False,
        desc: str | None = None,
        public: bool = False,
        extra_filters: dict | None = None,
    ) -> dict:
        """Create a template. Returns the server's answer: ``template`` holds every field, and
        its ``id`` and ``hash_id`` are repeated at the top level."""
        body = {
            "name": name,
            "image": image,
            "tag": image_tag,
            "href": href,
            "repo": repo,
            "env": env,
            "onstart": onstart_cmd,
            "jupyter_dir": jupyter_dir,
            "docker_login_repo": login_repo(login),
            "extra_filters": (
                extra_filters if extra_filters is not None
                else _search_params(search_params, no_default)
            ),
            "recommended_disk_space": disk_space,
            "readme": readme,
            "readme_visible": not hide_readme,
            "desc": desc,
            "private": not public,
            **fields_from_flags(ssh=ssh, jupyter=jupyter, direct=direct, jupyter_lab=jupyter_lab),
        }
        return _with_ids(self._http.request("POST", "/api/v0/template/", body=body))

    def search_templates(
        self, query: str | dict | None = None, order: str | None = None, limit: int | None = None
    ) -> list[dict]:
        """Search your templates and the public ones with the query language, e.g.
        ``"count_created > 100 use_ssh == True"``; ``order`` like ``"count_created-"``."""
        filters = parse_query(query, TEMPLATE_FIELDS) if isinstance(query, str) else query or {}
        params: dict[str, Any] = {"select_cols": ["*"], "select_filters": filters}
        if order:
            params["order_by"] = parse_order(order, TEMPLATE_FIELDS)
        if limit is not None:
            params["limit"] = int(limit)
        return self._http.request("GET", "/api/v0/template/", params=params).get("templates", [])

    @_passed_only(_update_template_signature)
    def update_template(self, passed: dict[str, Any]) -> dict:
        hash_id = passed.pop("HASH_ID", None) or passed.pop("hash_id", None)
        passed.pop("hash_id", None)
        if not hash_id:
            raise TypeError("update_template() needs the template's HASH_ID")
        body: dict[str, Any] = {"hash_id": hash_id}
        renames = {
            "name": "name", "image": "image", "env": "env", "onstart_cmd": "onstart",
            "image_tag": "tag", "jupyter_dir": "jupyter_dir", "readme": "readme", "desc": "desc",
            "href": "href", "repo": "repo", "extra_filters": "extra_filters",
            "disk": "recommended_disk_space", "disk_space": "recommended_disk_space",
        }
        for arg, field in renames.items():
            if arg in passed:
                body[field] = passed[arg]
        if "search_params" in passed:
            body["extra_filters"] = _search_params(
                passed["search_params"], passed.get("no_default", False)
            )
        if "login" in passed:
            body["docker_login_repo"] = login_repo(passed["login"])
        if "public" in passed:
            body["private"] = not passed["public"]
        if "hide_readme" in passed:
            body["readme_visible"] = not passed["hide_readme"]
        for flag in ("ssh", "jupyter", "direct", "jupyter_lab"):
            if flag in passed:
                body[flag] = bool(passed[flag])
        return _with_ids(self._http.request("PUT", "/api/v0/template/", body=body))

    def delete_template(self, template_id: int | None = None, hash_id: str | None = None) -> dict:
        """Delete by numeric ``template_id`` or by ``hash_id`` (the hash wins if both are given).
        This removes your relationship to it; its versions stay available by hash."""
        body: dict[str, Any] = {}
        if hash_id:
            body["hash_id"] = hash_id
        elif template_id is not None:
            body["template_id"] = template_id
        return self._http.request("DELETE", "/api/v0/template/", body=body)

    def template_versions(self, template_id: int) -> list[dict]:
        """Every version (hash) a template has had, newest first."""
        path = f"/api/v0/template/{template_id}/versions/"
        return self._http.request("GET", path)["versions"]

    def show_template(self, hash_id: str) -> dict:
        """The exact content a hash names (an old hash gives the old content)."""
        return self._http.request("GET", f"/api/v0/template/hash/{hash_id}/")["template"]

    # -- users ----------------------------------------------------------------------------

    def show_user(self) -> dict:
        user = self._http.request("GET", "/api/v0/users/current")
        user.pop("api_key", None)
        return user
