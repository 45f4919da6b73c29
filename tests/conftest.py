"""Shared fixtures: one database and one live server per test session, emptied before each test.

The database is SQLite in a temporary folder, or the PostgreSQL database named by
``GPUYARD_TEST_DB``. scripts/test runs the whole suite on SQLite, then the tests whose subject
is the data (POSTGRESQL_PASS) again on PostgreSQL (docs/testing.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text

from backend_passes import POSTGRESQL_PASS
from gpuyard.api.app import create_app
from gpuyard.services.accounts.users import create_user
from gpuyard.settings import Settings
from gpuyard.store.db import make_engine, transaction
from gpuyard.store.models import Base
from serving import serving
from worker_pause import paused_worker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("GPUYARD_TEST_DB") or os.environ.get("GPUYARD_TEST_ALL_ON_POSTGRESQL"):
        return
    root = config.rootpath / "tests"
    kept, left = [], []
    for item in items:
        relative = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        (kept if relative.startswith(POSTGRESQL_PASS) else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("GPUYARD_TEST_DB")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'gpuyard-test.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:  # start from an empty schema
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    """The server's data directory (its secret_key file lives there)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def app(db_url: str, data_dir):
    application = create_app(Settings.build(db_url=db_url, sim_boot_seconds=0, data_dir=data_dir))
    yield application
    application.state.engine.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> None:
    """Every test that touches the app starts from empty tables."""
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    # the reconciler and the worker's periodic jobs write instance rows and events: pause them
    # meanwhile (a status refresh queueing a reconcile between two deletes breaks a foreign key)
    with paused_worker(application):
        with application.state.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
        application.state.answers.clear()  # the rows went without the ORM's change hooks


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    with serving(app) as url:
        yield url


@dataclass
class Account:
    id: int
    name: str
    key: str
    url: str

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def sdk(self):
        from gpuyard import VastAI

        return VastAI(api_key=self.key, server_url=self.url)


@pytest.fixture
def make_account(app, live_server):
    def make(name: str, admin: bool = False) -> Account:
        with transaction(app.state.sessions) as session:
            user, key = create_user(session, name, admin=admin)
            return Account(id=user.id, name=name, key=key, url=live_server)

    return make


@pytest.fixture
def alice(make_account) -> Account:
    return make_account("alice")


@pytest.fixture
def bob(make_account) -> Account:
    return make_account("bob")


@pytest.fixture
def api(alice: Account) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as alice."""
    with alice.http() as client:
        yield client


@pytest.fixture
def set_count_created(app):
    """Set a template's launch counter (bookkeeping only launches change)."""
    from gpuyard.store.models import Template

    def set_count(template_id: int, count: int) -> None:
        with transaction(app.state.sessions) as session:
            session.get(Template, template_id).count_created = count

    return set_count


@pytest.fixture
def stored():
    """The template as the server now holds it, seen through ``client`` (an httpx client)."""
    import json

    def get(client: httpx.Client, template_id: int) -> dict:
        r = client.get(
            "/api/v0/template/",
            params={"select_filters": json.dumps({"id": {"eq": template_id}})},
        )
        assert r.status_code == 200, r.text
        rows = r.json()["templates"]
        assert len(rows) == 1, rows
        return rows[0]

    return get


# ---------------------------------------------------------------------------------------------
# Machines: a small fleet loaded into the test database (used by the offer/instance/volume tests)
# ---------------------------------------------------------------------------------------------

SMALL_FLEET_YAML = """
machines:
  - hostname: box-4090
    gpu_name: RTX 4090
    num_gpus: 2
    gpu_ram: 24
    cpu_cores: 32
    cpu_ram: 128
    disk_space: 1000
    inet_down: 1000
    inet_up: 800
    dph_per_gpu: 0.40
    min_bid_per_gpu: 0.05
    reliability: 0.995
    geolocation: Sweden, SE
    direct_port_count: 20
    public_ipaddr: 10.0.0.5
  - hostname: box-3090
    gpu_name: RTX 3090
    num_gpus: 1
    gpu_ram: 24
    cpu_cores: 16
    cpu_ram: 64
    disk_space: 500
    inet_down: 500
    inet_up: 300
    dph_per_gpu: 0.20
    min_bid_per_gpu: 0.04
    geolocation: Taiwan, TW
    direct_port_count: 10
    public_ipaddr: 10.0.0.6
"""


@pytest.fixture
def fleet(app):
    """Two machines (2x RTX 4090 at 10.0.0.5, 1x RTX 3090 at 10.0.0.6) with their offers.
    Returns the loader's result (``machine_ids`` by hostname)."""
    from gpuyard.services.market.fleet import load_fleet, parse_yaml

    with transaction(app.state.sessions) as session:
        return load_fleet(session, parse_yaml(SMALL_FLEET_YAML))


@pytest.fixture
def hosted(app, alice, bob):
    """The small fleet with owners (fleet key ``owner``): box-4090 (2 × RTX 4090) is alice's,
    box-3090 (1 × RTX 3090) bob's. Returns the machine ids by hostname."""
    from gpuyard.services.market.fleet import load_fleet, parse_yaml

    text = SMALL_FLEET_YAML.replace("  - hostname: box-4090\n", "  - hostname: box-4090\n    owner: alice\n")
    text = text.replace("  - hostname: box-3090\n", "  - hostname: box-3090\n    owner: bob\n")
    with transaction(app.state.sessions) as session:
        return load_fleet(session, parse_yaml(text)).machine_ids
