"""The server secret lives outside the database: GPUYARD_SECRET_KEY, else a 0600 file in the data
directory, made once (also when several processes start at once) and kept across restarts."""

from __future__ import annotations

import re
import stat
import threading

import httpx
import pytest
from sqlalchemy import select

from gpuyard.api.app import create_app
from gpuyard.server_secret import ENV_VAR, ServerSecretError, load_server_secret
from gpuyard.services.accounts.users import create_user
from gpuyard.settings import Settings
from gpuyard.store.db import transaction
from gpuyard.store.models import ServerSetting
from serving import serving

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
def no_env_secret(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def sign_in(client: httpx.Client, key: str) -> None:
    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"api_key": key, "csrf_token": token})
    assert r.status_code == 303, r.text


def test_the_secret_file_is_made_private_and_a_restart_keeps_the_sessions(tmp_path, no_env_secret):
    settings = Settings.build(db_url=f"sqlite:///{tmp_path / 'g.db'}", data_dir=tmp_path / "data")
    first = create_app(settings)
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.state.secret_source == str(path)
    with transaction(first.state.sessions) as session:
        _user, key = create_user(session, "carol")
    with serving(first) as url, httpx.Client(base_url=url) as client:
        sign_in(client, key)
        cookie = client.cookies["gpuyard_session"]
    written = path.read_bytes()

    second = create_app(settings)  # a restart
    assert path.read_bytes() == written
    with serving(second) as url, httpx.Client(base_url=url, cookies={"gpuyard_session": cookie}) as client:
        r = client.get("/templates")
        assert r.status_code == 200 and "carol" in r.text
    with transaction(second.state.sessions) as session:  # the database holds no signing secret
        keys = set(session.scalars(select(ServerSetting.key)))
        assert keys <= {"installation_id", "template_generation"}, keys
    for application in (first, second):
        application.state.engine.dispose()


def test_gpuyard_secret_key_wins_over_the_file(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("f" * 64)
    monkeypatch.setenv(ENV_VAR, "e" * 40)
    app = create_app(Settings.build(db_url=f"sqlite:///{tmp_path / 'g.db'}", data_dir=data))
    assert app.state.secret_source == ENV_VAR
    assert load_server_secret(data).value == b"e" * 40
    monkeypatch.delenv(ENV_VAR)
    assert load_server_secret(data).value == b"f" * 64
    app.state.engine.dispose()


def test_a_short_or_empty_secret_is_refused_with_how_to_fix_it(tmp_path):
    with pytest.raises(ServerSecretError, match="at least 32 random characters"):
        load_server_secret(tmp_path, {ENV_VAR: "short"})
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ServerSecretError, match="Restore it from your backup"):
        load_server_secret(tmp_path, {})


def test_processes_starting_at_once_agree_on_one_secret(tmp_path):
    folder = tmp_path / "fresh"
    start = threading.Barrier(16)
    seen: list[bytes] = []

    def load() -> None:
        start.wait()
        seen.append(load_server_secret(folder, {}).value)

    threads = [threading.Thread(target=load) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 16 and len(set(seen)) == 1
    assert [p.name for p in folder.iterdir()] == ["secret_key"]  # no temporary file left
    assert (folder / "secret_key").read_bytes().strip() == seen[0]


def test_serve_stops_with_the_message_when_the_secret_is_unusable(tmp_path, monkeypatch, capsys):
    from gpuyard.cli.main import main

    monkeypatch.setenv(ENV_VAR, "too-short")
    assert main(["serve", "--db", f"sqlite:///{tmp_path / 'g.db'}"]) == 1
    assert "GPUYARD_SECRET_KEY is 9 characters long" in capsys.readouterr().err
