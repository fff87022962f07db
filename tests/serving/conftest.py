"""Fixtures of the serving tests; the store-backed ones run once per store (SQLite, PostgreSQL).

The PostgreSQL runs use the server named by ``SLATEWISE_TEST_POSTGRES`` (a
``postgresql://`` URL); each test gets a schema of its own, dropped afterwards, so
parallel workers never meet, and ``synchronous_commit = off`` (the semantics
under test are the same; the SIGKILL test runs on the server's own setting, so
durability is tested there). Without the variable those runs are skipped, except
under ``SLATEWISE_CI=1``, where a missing server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving import create_app
from serving.config import ABExperimentConfig, ArmConfig, ServingConfig
from serving.store import EventStore, open_store

TOKEN = "s3cret-token"
POSTGRES_ENV = "SLATEWISE_TEST_POSTGRES"
STORES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test reads the SQLite file itself; run it on SQLite only")
    config.addinivalue_line("markers", "postgresql_only: the test is of the PostgreSQL store alone")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``store_url`` runs once per store (``sqlite_only`` ones on SQLite)."""
    if "store_url" in metafunc.fixturenames:
        kinds = ("sqlite",) if metafunc.definition.get_closest_marker("sqlite_only") else \
            ("postgresql",) if metafunc.definition.get_closest_marker("postgresql_only") else STORES
        metafunc.parametrize("store_url", kinds, indirect=True)


def postgres_server_url() -> str:
    """The test server's URL; skips (or, under ``SLATEWISE_CI=1``, fails) when none is configured."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        message = f"{POSTGRES_ENV} is not set (a postgresql:// URL of a test server; see .ci/run)"
        if os.environ.get("SLATEWISE_CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def new_pg_schema(fast: bool) -> Iterator[str]:
    """A URL of the test server whose current schema is a new empty one (dropped on exit).

    Args:
        fast: add ``synchronous_commit = off`` to the URL's session options.
    """
    import psycopg

    url = postgres_server_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    sep = "&" if "?" in url else "?"
    options = f"-csearch_path%3D{schema}" + ("%20-csynchronous_commit%3Doff" if fast else "")
    try:
        yield f"{url}{sep}options={options}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fast PostgreSQL schema of the test's own (see :func:`new_pg_schema`)."""
    with new_pg_schema(fast=True) as url:
        yield url


@pytest.fixture
def pg_durable_url() -> Iterator[str]:
    """A PostgreSQL schema of the test's own, on the server's own commit settings."""
    with new_pg_schema(fast=False) as url:
        yield url


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """``""`` for the SQLite file of ``make_config``, or a PostgreSQL URL with a schema of the test's own.

    A test that reaches the fixture only through ``request.getfixturevalue`` is not
    parametrised by :func:`pytest_generate_tests` and gets SQLite.
    """
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_schema_url"))


def store_target(cfg: ServingConfig) -> str:
    """What ``slatewise logs export-serving`` is given for the service's store: its URL or its file."""
    return cfg.store or cfg.db_path


def read_rows(cfg: ServingConfig, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read through a connection of its own (not the service's), on either store."""
    if cfg.store:
        import psycopg

        with psycopg.connect(cfg.store, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(sql.encode())]
    import sqlite3

    with sqlite3.connect(cfg.db_path) as conn:
        return [tuple(r) for r in conn.execute(sql)]


@pytest.fixture
def store_factory(store_url: str, tmp_path: Path) -> Iterator[Callable[[], EventStore]]:
    """Opens the test's store (each call a new handle on the same database; closed afterwards)."""
    opened: list[EventStore] = []

    def build() -> EventStore:
        opened.append(open_store(store_url or str(tmp_path / "s.db")))
        return opened[-1]

    yield build
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], EventStore]) -> EventStore:
    """The test's event store, on each backend."""
    return store_factory()


class Clock:
    """A settable UNIX clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_config(tmp_path: Path, **changes: Any) -> ServingConfig:
    ab = ABExperimentConfig(
        name="ab", salt="ab-v1", control="control",
        arms=(ArmConfig("control", "linucb", 0.5, {"alpha": 0.5}),
              ArmConfig("treatment", "uniform", 0.5, learn=False)),
        min_decisions_per_stage=50)
    base: dict[str, Any] = {
        "db_path": str(tmp_path / "serving.db"), "model_dir": str(tmp_path / "models"),
        "admin_token": TOKEN, "learner": False, "n_items": 20, "k": 3, "dim_context": 4,
        "reward_window_s": 3600.0,
        "experiments": (ABExperimentConfig(name="default", salt="default-v1", control="control",
                                         arms=(ArmConfig("control", "linucb", 1.0, {"alpha": 1.0}),)),
                        ab),
    }
    base.update(changes)
    return ServingConfig(**base)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_factory(tmp_path: Path, clock: Clock, store_url: str) -> Iterator[Callable[..., Flask]]:
    """Builds apps on the test's store (closing their connections and learners afterwards)."""
    built: list[Flask] = []

    def build(**changes: Any) -> Flask:
        built.append(create_app(make_config(tmp_path, **{"store": store_url, **changes}), clock=clock))
        return built[-1]

    yield build
    for app in built:
        svc = app.extensions["slatewise"]
        svc.learner.stop()
        svc.store.close()


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def slate_body(user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "context": [0.5, -1.0, 0.25, 2.0], **extra}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
