"""Host methods of :class:`gpuyard.VastAI` (VAST-WIRE §18, docs/hosts.md): the machines you
own, listing and prices, maintenance windows. Same names and arguments as the official SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from gpuyard.sdk.http import Transport


class MachinesMixin:
    _http: Transport

    def show_machines(self) -> list[dict]:
        """Your machines (specs, prices, listing, rentals, maintenance windows)."""
        return self._http.request("GET", "/api/v0/machines", params={"owner": "me"})["machines"]

    def show_machine(self, id: int) -> dict:  # noqa: A002 - the official name
        """One of your machines (NotFound for anyone else's)."""
        return self._http.request("GET", f"/api/v0/machines/{int(id)}", params={"owner": "me"})[0]

    def list_machine(self, id: int, price_gpu: float | None = None, price_disk: float | None = None,  # noqa: A002
                     price_inetu: float | None = None, price_inetd: float | None = None,
                     price_min_bid: float | None = None, min_chunk: int | None = None,
                     end_date: float | None = None, discount_rate: float | None = None,
                     duration: str | None = None, vol_size: int | None = None,
                     vol_price: float | None = None) -> dict:
        """Set prices (None keeps one), the fewest GPUs per offer and the end date, and list the
        machine; its offers change at once, rentals keep their price."""
        return self._http.request("PUT", "/api/v0/machines/create_asks/", body={
            "machine": int(id), "price_gpu": price_gpu, "price_disk": price_disk,
            "price_inetu": price_inetu, "price_inetd": price_inetd, "price_min_bid": price_min_bid,
            "min_chunk": min_chunk, "end_date": end_date, "credit_discount_max": discount_rate,
            "duration": duration, "vol_size": vol_size, "vol_price": vol_price})

    def unlist_machine(self, id: int) -> dict:  # noqa: A002
        """Withdraw every offer of the machine; its instances keep running."""
        return self._http.request("DELETE", f"/api/v0/machines/{int(id)}/asks/", body={})

    def schedule_maint(self, id: int, sdate: float, duration: float,  # noqa: A002
                       category: str = "not provided") -> dict:
        """A maintenance window from ``sdate`` (epoch seconds) lasting ``duration`` hours."""
        return self._http.request("PUT", f"/api/v0/machines/{int(id)}/dnotify/", body={
            "client_id": "me", "sdate": sdate, "duration": duration, "maintenance_category": category})

    def cancel_maint(self, id: int) -> dict:  # noqa: A002
        """Cancel the machine's windows that have not ended."""
        return self._http.request("PUT", f"/api/v0/machines/{int(id)}/cancel_maint/",
                                  body={"client_id": "me", "machine_id": int(id)})

    def show_maints(self, ids: list[int] | None = None) -> list[dict]:
        """The windows of your machines among ``ids`` that have not ended (``None``: of all your
        machines; the official SDK always needs ``ids``)."""
        params: dict = {"owner": "me"}
        if ids is not None:
            params["machine_ids"] = [int(i) for i in ids]
        return self._http.request("GET", "/api/v0/machines/maintenances", params=params)
