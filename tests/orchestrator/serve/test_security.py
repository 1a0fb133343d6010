"""Security of the service: loopback by default, no other address without a token, the bearer check, and
the database URL's password kept out of the Serve config (the checks that need no running Serve)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from circuits import CktLoopError
from orchestrator.cli import main
from orchestrator.serve.app import create_app
from orchestrator.serve.config import TOKEN_ENV, ServeConfig, is_loopback, load_serve_config
from orchestrator.serve.deployments import app_config, build_app
from orchestrator.serve.services import Services

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """``cktloop serve`` sets Serve's and CktLoop's variables (``CKTLOOP_DB`` among them) in this process's
    environment before Ray starts (``deployments.environment_for``): put it back after each test, or the
    later tests' subprocesses inherit them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)


def test_loopback_by_default_and_which_hosts_are_loopback() -> None:
    assert ServeConfig().host == "127.0.0.1"
    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2", "0.0.0.0", "10.1.2.3", "host")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_another_address_needs_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exposed = ServeConfig(host="0.0.0.0")
    with pytest.raises(CktLoopError, match=r"refusing to listen on 0\.0\.0\.0 without an API token"):
        exposed.check_exposure(exposed.read_token())
    ServeConfig().check_exposure(None)  # loopback: no token needed
    monkeypatch.setenv(TOKEN_ENV, "  from-env \n")
    assert exposed.read_token() == "from-env"
    monkeypatch.delenv(TOKEN_ENV)
    (tmp_path / "token").write_text("from-file\nignored\n")
    assert exposed.replace(token_file=str(tmp_path / "token")).read_token() == "from-file"
    with pytest.raises(CktLoopError, match="token_file"):
        exposed.replace(token_file=str(tmp_path / "missing")).read_token()
    with pytest.raises(CktLoopError, match="refusing"):
        build_app({"host": "0.0.0.0"})  # `serve run serve_config.yaml` refuses too


def test_cli_refuses_in_one_line_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import orchestrator.cli.serve as serve_cli
    import orchestrator.serve.deployments as deployments

    def never(*_: Any) -> None:
        raise AssertionError("deployed without a token")

    monkeypatch.setattr(deployments, "deploy", never)
    assert main(["serve", "--host", "0.0.0.0", "--port", "18999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to listen on 0.0.0.0 without an API token" in err

    reached: list[ServeConfig] = []

    def stop(config: ServeConfig, **_: Any) -> None:
        reached.append(config)
        raise CktLoopError("stopped by the test")

    for name in deployments.direct_ingress_env(1):  # what environment_for sets, unset before it runs
        monkeypatch.delenv(name, raising=False)
    shut: list[tuple[bool, bool, bool]] = []

    def shut_down(*flags: bool) -> str:
        shut.append(flags)
        return "recorded"

    monkeypatch.setattr(deployments, "deploy", stop)
    monkeypatch.setattr("orchestrator.distributed.runtime.ensure_ray", lambda *_: False)  # connected before
    monkeypatch.setattr(serve_cli, "_serve_running", lambda: False)
    monkeypatch.setattr(serve_cli, "_shut_down", shut_down)
    monkeypatch.setenv(TOKEN_ENV, "secret-token")
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["serve", "--host", "0.0.0.0", "--port", "18999"]) == 2
    assert reached and reached[0].host == "0.0.0.0" and reached[0].port == 18999
    assert "secret-token" not in capsys.readouterr().err
    assert shut == [(False, False, False)]  # not joined, Ray not connected by the command: it is not stopped
    # its handlers are back: a SIGINT left ignored here would be inherited by every later subprocess (test_web's
    # `cktloop serve` then ignored its Ctrl-C and was stopped 90 s later by SIGTERM)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


class Idle:
    async def info(self) -> dict[str, Any]:
        return {"generator": {"version": "g"}, "surrogate": {"version": "s"}}


def test_with_a_token_every_request_without_it_gets_401() -> None:
    client = TestClient(create_app(Services(Idle(), ServeConfig()), token="t0k3n"))  # type: ignore[arg-type]
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": "t0k3n"},
        {"authorization": "Basic t0k3n"},
    ):
        for method, path in (("GET", "/healthz"), ("POST", "/v1/generate"), ("GET", "/v1/models"), ("POST", "/")):
            answer = client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.json() == {"error": "authorization: missing or wrong bearer token", "status": 401}
            assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz", headers={"authorization": "Bearer t0k3n"}).json()["generator"] == "g"
    assert client.get("/").status_code != 401  # the page's shell: it asks for the token, then sends it
    assert client.get("/docs").status_code == 200  # so is Swagger UI, whose Authorize button sends the scheme:
    assert client.get("/openapi.json").json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_database_password_stays_out_of_the_serve_config() -> None:
    config = ServeConfig(db="postgresql+psycopg://cktloop:hunter2@db.example/designs")
    assert "hunter2" not in json.dumps(app_config(config))
    plain = app_config(ServeConfig(db="sqlite:///designs.db"))
    assert plain["applications"][0]["args"]["db"] == "sqlite:///designs.db"


def test_serve_failing_to_start_is_one_line_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's own start failing (its proxy actor killed on a loaded machine, say) ends as one CktLoopError line,
    not a Ray traceback; a database URL in the message is masked."""
    import ray.serve._private.api as serve_api
    from ray.exceptions import RayError

    from orchestrator.serve.deployments import deploy

    def dies(**_: Any) -> Any:
        raise RayError("The actor died unexpectedly (postgresql+psycopg://u:hunter2@db/x)\n\tclass_name: ProxyActor")

    monkeypatch.setattr(serve_api, "serve_start", dies)
    with pytest.raises(CktLoopError) as caught:
        deploy(ServeConfig())
    message = str(caught.value)
    assert message.startswith("Serve did not start: RayError: The actor died unexpectedly") and "\n" not in message
    assert "hunter2" not in message


def test_the_repository_serve_config_is_a_serve_config_of_this_app() -> None:
    from ray.serve.schema import ServeDeploySchema

    data = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(data)
    (app,) = schema.applications
    ours = app_config(ServeConfig())["applications"][0]
    assert app.import_path == ours["import_path"] and schema.http_options.host == "127.0.0.1"
    assert [d.name for d in app.deployments] == [d["name"] for d in ours["deployments"]]
    assert [d.user_config for d in app.deployments] == [d["user_config"] for d in ours["deployments"]]
    ServeConfig.model_validate(app.args)
    assert schema.logging_config is not None and schema.logging_config.enable_access_log is False


def test_config_file_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("caps: {max_n: 0}\nport: 'x'\n")
    with pytest.raises(CktLoopError) as info:
        load_serve_config(path)
    assert "caps.max_n" in str(info.value) and "port" in str(info.value) and "\n" not in str(info.value)
    assert load_serve_config(None, port=9000).port == 9000
