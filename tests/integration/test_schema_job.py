"""The chart's schema job (python -m kit.schema) on a real Cassandra node."""

from __future__ import annotations

import secrets

import pytest

from kit import cassandra, schema
from kit.config import ROOT, CassandraSettings


async def test_the_schema_job_creates_each_services_keyspace_and_tables(
    cassandra_settings: CassandraSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = f"_job{secrets.token_hex(3)}"
    monkeypatch.setenv("EMPORIUM_KEYSPACE_SUFFIX", suffix)
    await schema.apply(["order", "payment"], wait_seconds=60)

    session = await cassandra.connect(cassandra_settings)
    try:
        for name in ("order", "payment"):
            keyspace = f"emporium_{name}{suffix}"
            rows = await session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                (keyspace,),
            )
            expected = (ROOT / f"services/{name}/schema.cql").read_text().lower()
            tables = {row.table_name for row in rows}
            assert tables, f"no tables in {keyspace}"
            assert all(f"create table if not exists {t}" in expected for t in tables)
        # Applying it again (an upgrade, or a service starting) changes nothing and fails not.
        await schema.apply(["order"], wait_seconds=60)
    finally:
        for name in ("order", "payment"):
            await session.drop_keyspace(f"emporium_{name}{suffix}")
        await session.close()


async def test_the_schema_job_refuses_a_service_without_a_schema() -> None:
    with pytest.raises(FileNotFoundError, match="cart"):
        await schema.apply(["cart"])
