"""The throwaway PostgreSQL cluster of tests/postgres_server.py."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres_server import PostgresServer
from tests.waiting import wait_for


def test_stops_and_starts_on_its_port_keeping_its_data(
    throwaway_postgres: PostgresServer,
) -> None:
    server = throwaway_postgres
    url = server.create_database("kept")
    assert url == f"postgres://postgres@127.0.0.1:{server.port}/kept"
    server.psql("CREATE TABLE note (body text); INSERT INTO note VALUES ('kept')", "kept")
    server.stop()
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=10)
    server.start()
    assert server.running
    with psycopg.connect(url) as reconnected:
        assert reconnected.execute("SELECT body FROM note").fetchall() == [("kept",)]


def test_a_streaming_replica_follows_its_primary(throwaway_postgres: PostgresServer) -> None:
    primary = throwaway_postgres
    url = primary.create_database("streamed")
    primary.psql("CREATE TABLE note (body text)", "streamed")
    replica = PostgresServer.replica_of(primary)
    try:
        assert replica.port != primary.port
        assert replica.psql("SELECT pg_is_in_recovery()", "streamed") == "t"
        with psycopg.connect(url, autocommit=True) as writer:
            writer.execute("INSERT INTO note VALUES ('streamed')")
        wait_for(lambda: replica.psql("SELECT count(*) FROM note", "streamed") == "1", timeout=60)
        replica.stop()
        replica.start()
        assert replica.psql("SELECT body FROM note", "streamed") == "streamed"
    finally:
        replica.remove()
