"""The event table as 8 hash partitions on ``credential_id`` beside the one table we ship,
measured side by side on the bench's filled table (PostgreSQL only).

``measure_partitioning`` (the ``partitioning`` section of bench/run.py):

- builds ``calcache_calendarevent_part``, ``PARTITION BY HASH (credential_id)`` into
  ``PARTITIONS`` partitions, from the live table's own definitions (its columns, NOT
  NULLs and CHECKs by ``LIKE``; its constraints by ``pg_get_constraintdef``, its other
  indexes by ``pg_get_indexdef``; its extended statistics on the parent and on every
  partition, where the planner reads them for a pruned scan), so it has the same unique
  identity constraint, foreign key and partial covering busy index the migrations create.
  What cannot be the same on PostgreSQL 15: every unique constraint of a partitioned table
  must contain the partition key, so the primary key is ``(id, credential_id)`` instead
  of ``(id)``, and a partitioned table has no identity column (PostgreSQL 17 allows one),
  so ``id`` defaults to a sequence of its own, set past the copied ids;
- fills it with ``INSERT ... SELECT`` before its indexes exist (they are built once
  after, as bench/fill.py does for the one table), then ``VACUUM ANALYZE`` of both;
- measures, interleaved (the order of the two tables alternates sample by sample):
  the availability read, ``calcache.availability.sql.pg_read_sql()`` with
  ``pg_read_params`` for one-week windows of random users, the event table's name
  substituted, prepared by psycopg (``prepare=True``, binary results, as ``read_users``
  runs it) on one plain connection; the answers compared; and ``EXPLAIN (ANALYZE,
  FORMAT JSON) EXECUTE`` of both prepared statements for a few samples: server time, plan
  shape, and whether the LATERAL's scan is pruned to one partition at run time (an
  Append whose partitions' loops add up to its own: each calendar's rescan runs one
  partition; "Subplans Removed" counts partitions pruned once, at executor start up);
- page writes: the sync's own upsert (``calcache.sync.writes``: ``_PG_CREATE_PAGE_TABLE``,
  ``_PG_COPY_PAGE``, ``_PG_UPSERT_PAGE``, the event table's name substituted) of one
  calendar's page of updated events (every stored row of the calendar, its etag
  changed) and of new events, each page in a transaction that is rolled back, so the two
  tables stay identical (the rolled-back rows leave dead tuples in both alike);
- sizes: ``pg_table_size``, ``pg_indexes_size`` and ``pg_total_relation_size`` of both
  (summed over the partitions, which hold the storage), and of each index;

and drops the copy at the end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench.availability import EVENT_TABLE, explain_execute, pick_samples
from bench.common import log, percentiles, timed

PARTITIONS = 8
PART_TABLE = f"{EVENT_TABLE}_part"
EXPLAINED = 20  # samples EXPLAINed per table
NEW_PAGE = 250  # events of a page of new events (Google's default page size)


# --- the partitioned copy -----------------------------------------------------------------


def _relation_ddl(cur: Any) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """The live event table's constraints (beyond NOT NULL and CHECK, which LIKE copies),
    its indexes that back no constraint, and its extended statistics: (constraint
    definitions, index definitions, (statistics name, definition))."""
    cur.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY contype, conname",
        [EVENT_TABLE],
    )
    constraints = []
    for name, kind, definition in cur.fetchall():
        if kind == "p":
            # A partitioned table's unique constraints must contain the partition key.
            assert definition == "PRIMARY KEY (id)", definition
            definition = "PRIMARY KEY (id, credential_id)"
        constraints.append(f"ADD CONSTRAINT {name}_part {definition}")
    cur.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
        "WHERE indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        [EVENT_TABLE],
    )
    indexes = []
    for name, definition in cur.fetchall():
        head, on, tail = definition.partition(f" ON public.{EVENT_TABLE} ")
        assert on, definition
        indexes.append(f"{head.replace(name, f'{name}_part')} ON {PART_TABLE} {tail}")
    cur.execute(
        "SELECT s.stxname, pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s "
        "WHERE s.stxrelid = %s::regclass ORDER BY 1",
        [EVENT_TABLE],
    )
    statistics = list(cur.fetchall())
    return constraints, indexes, statistics


def build_partitioned(conn: Any) -> dict[str, Any]:
    """Create and fill the partitioned copy (autocommit connection); returns its DDL and
    how long each step took."""
    began = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {PART_TABLE} CASCADE")
        cur.execute(f"DROP SEQUENCE IF EXISTS {PART_TABLE}_id_seq")
        constraints, indexes, statistics = _relation_ddl(cur)
        cur.execute(
            f"CREATE TABLE {PART_TABLE} (LIKE {EVENT_TABLE} INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS) PARTITION BY HASH (credential_id)"
        )
        for number in range(PARTITIONS):
            cur.execute(
                f"CREATE TABLE {PART_TABLE}_{number} PARTITION OF {PART_TABLE} "
                f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {number})"
            )
        cur.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [EVENT_TABLE],
        )
        row = cur.fetchone()
        assert row is not None
        columns = row[0]
        filled = time.perf_counter()
        cur.execute(f"INSERT INTO {PART_TABLE} ({columns}) SELECT {columns} FROM {EVENT_TABLE}")
        rows = cur.rowcount
        fill_seconds = time.perf_counter() - filled
        cur.execute(f"CREATE SEQUENCE {PART_TABLE}_id_seq OWNED BY {PART_TABLE}.id")
        cur.execute(
            f"SELECT setval('{PART_TABLE}_id_seq', (SELECT coalesce(max(id), 0) + 1 "
            f"FROM {EVENT_TABLE}), false)"
        )
        cur.execute(
            f"ALTER TABLE {PART_TABLE} ALTER COLUMN id SET DEFAULT nextval('{PART_TABLE}_id_seq')"
        )
        indexed = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '1GB'")
        ddl = [f"ALTER TABLE {PART_TABLE} {constraint}" for constraint in constraints]
        ddl += indexes
        for name, definition in statistics:
            targets = [PART_TABLE] + [f"{PART_TABLE}_{n}" for n in range(PARTITIONS)]
            for target in targets:
                ddl.append(
                    definition.replace(
                        name, f"{name}{target.removeprefix(EVENT_TABLE)}", 1
                    ).replace(f"FROM {EVENT_TABLE}", f"FROM {target}")
                )
        for statement in ddl:
            cur.execute(statement)
        cur.execute("RESET maintenance_work_mem")
        index_seconds = time.perf_counter() - indexed
    return {
        "rows": rows,
        "ddl": ddl,
        "fill_seconds": fill_seconds,
        "index_seconds": index_seconds,
        "seconds": time.perf_counter() - began,
    }


def drop_partitioned(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {PART_TABLE} CASCADE")


def vacuum_both(conn: Any) -> dict[str, float]:
    """``VACUUM ANALYZE`` of each table; seconds of each."""
    seconds = {}
    with conn.cursor() as cur:
        for name, table in (("one", EVENT_TABLE), ("part", PART_TABLE)):
            began = time.perf_counter()
            cur.execute(f"VACUUM ANALYZE {table}")
            seconds[name] = time.perf_counter() - began
    return seconds


# --- sizes --------------------------------------------------------------------------------


def _storage(cur: Any, relation: str, fn: str) -> int:
    """``fn`` of a relation, summed over its partition tree (a partitioned table or index
    holds no storage itself; a plain relation is its own tree)."""
    cur.execute(
        f"SELECT coalesce(sum({fn}(relid)), 0)::bigint FROM ("
        "SELECT relid FROM pg_partition_tree(%s::regclass) "
        "UNION SELECT %s::regclass) tree",
        [relation, relation],
    )
    row = cur.fetchone()
    assert row is not None
    return int(row[0])


def sizes_of(conn: Any, table: str, rows: int) -> dict[str, Any]:
    with conn.cursor() as cur:
        table_bytes = _storage(cur, table, "pg_table_size")
        index_bytes = _storage(cur, table, "pg_indexes_size")
        total = _storage(cur, table, "pg_total_relation_size")
        cur.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass "
            "ORDER BY 1",
            [table],
        )
        names = [name for (name,) in cur.fetchall()]
        per_index = {name: _storage(cur, name, "pg_relation_size") for name in names}
    return {
        "rows": rows,
        "table_bytes": table_bytes,
        "indexes_bytes": index_bytes,
        "total_bytes": total,
        "indexes": per_index,
        "table_bytes_per_row": table_bytes / rows if rows else 0.0,
        "indexes_bytes_per_row": index_bytes / rows if rows else 0.0,
        "total_bytes_per_row": total / rows if rows else 0.0,
    }


# --- reads --------------------------------------------------------------------------------


def read_sql(table: str) -> str:
    """The statement ``read_users`` sends, reading ``table`` for the events."""
    from calcache.availability.sql import pg_read_sql

    sql = pg_read_sql()
    marker = f"FROM {EVENT_TABLE} e\n"
    assert sql.count(marker) == 1, "pg_read_sql's event table reference moved"
    return sql.replace(marker, f"FROM {table} e\n")


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _partition_scan(plan: dict[str, Any]) -> dict[str, Any] | None:
    """The scan of a partition under an Append's child (a gating Result may sit between)."""
    for node in _nodes(plan):
        if str(node.get("Relation Name", "")).startswith(f"{PART_TABLE}_"):
            return node
    return None


def _over_partitions(plan: dict[str, Any]) -> bool:
    children = plan.get("Plans", ())
    return (
        plan["Node Type"] == "Append"
        and bool(children)
        and all(_partition_scan(child) is not None for child in children)
    )


def plan_shape(plan: dict[str, Any]) -> str:
    """Node types in tree order, scans with their index (or table), children in brackets;
    an Append over partitions is abbreviated to the partitions' scans, counted (the
    partitions' index names are PostgreSQL's, derived from the parent index's)."""
    name = plan["Node Type"]
    children = plan.get("Plans", ())
    if _over_partitions(plan):
        kinds = set()
        for child in children:
            scan = _partition_scan(child)
            assert scan is not None
            via = "Result > " if child is not scan else ""
            kinds.add(f"{via}{scan['Node Type']}")
        return f"Append[{len(children)} partitions: {' / '.join(sorted(kinds))}]"
    where = plan.get("Index Name") or plan.get("Relation Name")
    text = f"{name} {where}" if where else name
    inner = [plan_shape(child) for child in children]
    return f"{text}[{', '.join(inner)}]" if inner else text


def pruning(plan: dict[str, Any]) -> dict[str, Any]:
    """How the plan visits the partitions: per execution of the LATERAL (the Append's
    loops), how many partition scans ran."""
    appends = [node for node in _nodes(plan) if _over_partitions(node)]
    if not appends:
        return {"appends": 0}
    node = appends[0]
    children = [_partition_scan(child) or child for child in node.get("Plans", ())]
    scans = sum(child.get("Actual Loops", 0) for child in children)
    loops = node.get("Actual Loops", 0)
    return {
        "appends": len(appends),
        "partitions_in_plan": len(children),
        "subplans_removed": node.get("Subplans Removed", 0),
        "append_loops": loops,
        "partition_scans": scans,
        "partition_scans_per_loop": scans / loops if loops else 0.0,
        "partitions_never_executed": sum(1 for c in children if not c.get("Actual Loops")),
    }


class PreparedRead:
    """One table's read statement, prepared by psycopg on the shared plain connection."""

    def __init__(self, conn: Any, table: str) -> None:
        self.conn, self.table, self.sql = conn, table, read_sql(table)

    def run(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.conn.cursor(binary=True) as cur:
            cur.execute(self.sql, params, prepare=True)
            return cur.fetchall()

    def explain(self, params: dict[str, Any]) -> dict[str, Any]:
        """``EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE`` of this statement as prepared (the
        generic or custom plan the plan cache picks), with the plan cache's counts."""
        import psycopg

        with psycopg.ClientCursor(self.conn) as cur:
            cur.execute(
                "SELECT name, parameter_types::text[], generic_plans, custom_plans "
                "FROM pg_prepared_statements WHERE statement LIKE %s",
                [f"%FROM {self.table} e\n%"],
            )
            found = cur.fetchone()
            assert found is not None, f"no prepared statement reads {self.table}"
            name, types, generic, custom = found
            top = explain_execute(cur, name, types, self.sql, params)[0]
        return {
            "execution_ms": float(top["Execution Time"]),
            "shape": plan_shape(top["Plan"]),
            "pruning": pruning(top["Plan"]),
            "generic_plans": generic,
            "custom_plans": custom,
        }


def measure_reads(
    conn: Any, users: list[Any], now: datetime, samples: int, seed: int
) -> dict[str, Any]:
    """One-week reads of random users on both tables, interleaved; the answers compared;
    a few samples EXPLAINed on both."""
    from calcache.availability.sql import pg_read_params

    rng = random.Random(f"{seed}:partitioning")
    week = [s for s in pick_samples(rng, users, now, samples) if s.window == "1 week"]
    reads = {"one": PreparedRead(conn, EVENT_TABLE), "part": PreparedRead(conn, PART_TABLE)}

    def params(sample: Any) -> dict[str, Any]:
        ids = [sample.user.pk]
        return pg_read_params(
            ids, ids, True, sample.start.astimezone(UTC), sample.end.astimezone(UTC)
        )

    for sample in week[:30]:  # warm-up: prepared, plan cache settled
        for read in reads.values():
            read.run(params(sample))
    times: dict[str, list[float]] = {"one": [], "part": []}
    mismatches = 0
    rows = []
    for number, sample in enumerate(week):
        order = list(reads) if number % 2 == 0 else list(reversed(reads))
        got = {}
        asked = params(sample)
        for name in order:
            got[name], ms = timed(partial(reads[name].run, asked))
            times[name].append(ms)
        mismatches += got["one"] != got["part"]
        rows.append(len(got["one"]))
    explained: dict[str, list[dict[str, Any]]] = {"one": [], "part": []}
    for number, sample in enumerate(week[:EXPLAINED]):
        order = list(reads) if number % 2 == 0 else list(reversed(reads))
        for name in order:
            explained[name].append(reads[name].explain(params(sample)))
    result: dict[str, Any] = {"samples": len(week), "mismatches": mismatches}
    for name in reads:
        plans = explained[name]
        shapes: dict[str, int] = {}
        for plan in plans:
            shapes[plan["shape"]] = shapes.get(plan["shape"], 0) + 1
        result[name] = {
            "client": percentiles(times[name]),
            "server": percentiles([plan["execution_ms"] for plan in plans]),
            "shapes": shapes,
            "pruning": [plan["pruning"] for plan in plans],
            "generic_plans": plans[-1]["generic_plans"] if plans else 0,
            "custom_plans": plans[-1]["custom_plans"] if plans else 0,
        }
    result["calendars_per_sample_median"] = sorted(rows)[len(rows) // 2] if rows else 0
    result["p50_ratio"] = result["part"]["client"]["p50"] / result["one"]["client"]["p50"]
    result["p99_ratio"] = result["part"]["client"]["p99"] / result["one"]["client"]["p99"]
    result["server_p50_ratio"] = result["part"]["server"]["p50"] / result["one"]["server"]["p50"]
    return result


# --- page writes --------------------------------------------------------------------------


def upsert_sql(table: str) -> str:
    from calcache.sync import writes

    sql = writes._PG_UPSERT_PAGE
    marker = f"{EVENT_TABLE} AS "
    assert sql.count(marker) == 2, "the upsert's event table references moved"
    return sql.replace(marker, f"{table} AS ")


def _page_rows(cur: Any, credential_id: int, calendar_id: str) -> list[tuple[Any, ...]]:
    """The calendar's stored rows as page rows (``writes._PAGE_FIELDS`` order)."""
    from calcache.sync import writes

    columns = ", ".join(writes._column(name) for name in writes._PAGE_FIELDS)
    cur.execute(
        f"SELECT {columns} FROM {EVENT_TABLE} WHERE credential_id = %s AND calendar_id = %s "
        "ORDER BY google_event_id",
        [credential_id, calendar_id],
    )
    return list(cur.fetchall())


def measure_writes(
    conn: Any, calendars: list[tuple[int, int, str]], rounds: int, seed: int
) -> dict[str, Any]:
    """Per round, one random calendar (credential id, user id, calendar id): its page of
    updates (every stored row, etag changed) and a page of ``NEW_PAGE`` new events (its
    rows under new ids) upserted into each table, each page in its own transaction,
    rolled back; the order of the tables alternates."""
    from calcache.sync import writes

    etag = writes._PAGE_FIELDS.index("etag")
    event_id = writes._PAGE_FIELDS.index("google_event_id")
    upserts = {"one": upsert_sql(EVENT_TABLE), "part": upsert_sql(PART_TABLE)}
    rng = random.Random(f"{seed}:partitioning-writes")
    times: dict[tuple[str, str], list[float]] = {}
    written: dict[tuple[str, str], int] = {}
    mismatches = 0
    with conn.cursor() as cur:
        cur.execute(writes._PG_CREATE_PAGE_TABLE)  # once a session, as the sync's session
    conn.commit()

    def page(table: str, params: dict[str, Any], rows: list[tuple[Any, ...]]) -> tuple[int, float]:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            began = time.perf_counter()
            cur.execute(writes._PG_CREATE_PAGE_TABLE, prepare=False)
            with cur.copy(writes._PG_COPY_PAGE) as copy:
                copy.set_types(writes._PG_PAGE_TYPES)
                for row in rows:
                    copy.write_row(row)
            cur.execute(upserts[table], params, prepare=True)
            found = cur.fetchone()
            ms = (time.perf_counter() - began) * 1000
        # A rolled-back COPY leaves dead rows in the page table, which no commit truncates
        # (ON COMMIT DELETE ROWS) and no VACUUM visits: empty it, untimed, between pages.
        with conn.cursor() as cur:
            cur.execute(f"TRUNCATE {writes._PG_PAGE_TABLE}")
        conn.commit()
        assert found is not None
        return int(found[0]), ms

    for number in range(-5, rounds):  # the first 5 rounds are a warm-up
        credential_id, user_id, calendar_id = rng.choice(calendars)
        with conn.cursor() as cur:
            stored = _page_rows(cur, credential_id, calendar_id)
        conn.commit()
        if not stored:
            continue
        tag = f"bench-part-{number}"
        updates = [(*r[:etag], f"{r[etag]}-{tag}", *r[etag + 1 :]) for r in stored]
        new = [
            (
                *r[:event_id],
                f"{r[event_id]}_{tag}_{k}",
                *r[event_id + 1 : etag],
                tag,
                *r[etag + 1 :],
            )
            for k in range(NEW_PAGE // len(stored) + 1)
            for r in stored
        ][:NEW_PAGE]
        params = {
            "credential_id": credential_id,
            "user_id": user_id,
            "calendar_id": calendar_id,
            "now": datetime.now(UTC),
        }
        order = list(upserts) if number % 2 == 0 else list(reversed(upserts))
        for kind, rows in (("update", updates), ("new", new)):
            counts = {}
            for table in order:
                counts[table], ms = page(table, params, rows)
                if number >= 0:
                    times.setdefault((kind, table), []).append(ms)
                    written[(kind, table)] = written.get((kind, table), 0) + counts[table]
            mismatches += counts["one"] != counts["part"] or counts["one"] != len(rows)
    result: dict[str, Any] = {"rounds": rounds, "new_page": NEW_PAGE, "mismatches": mismatches}
    for kind in ("update", "new"):
        entry: dict[str, Any] = {}
        for table in upserts:
            pages = times.get((kind, table), [])
            rows_written = written.get((kind, table), 0)
            entry[table] = {
                **percentiles(pages),
                "rows": rows_written,
                "rows_per_s": rows_written / (sum(pages) / 1000) if pages else 0.0,
                "rows_per_page": rows_written / len(pages) if pages else 0.0,
            }
        entry["rows_per_s_ratio"] = (
            entry["part"]["rows_per_s"] / entry["one"]["rows_per_s"]
            if entry["one"]["rows_per_s"]
            else 0.0
        )
        result[kind] = entry
    return result


# --- the section --------------------------------------------------------------------------


def measure_partitioning(
    *,
    url: str,
    users: list[Any],
    credentials: dict[int, Any],
    calendars: dict[int, list[str]],
    now: datetime,
    samples: int,
    write_rounds: int,
    seed: int,
    progress: Callable[[str], None] = log,
) -> dict[str, Any]:
    """The section: build, measure, drop (see the module's docstring)."""
    import psycopg

    admin = psycopg.connect(url, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {EVENT_TABLE}")
            row = cur.fetchone()
        assert row is not None
        rows = int(row[0])
        progress(f"partitioning: copying {rows:,} rows into {PARTITIONS} hash partitions")
        built = build_partitioned(admin)
        progress(
            f"  copied in {built['fill_seconds']:.1f} s, constraints and indexes "
            f"{built['index_seconds']:.1f} s; VACUUM ANALYZE of both"
        )
        vacuum = vacuum_both(admin)
        sizes = {
            "one": sizes_of(admin, EVENT_TABLE, rows),
            "part": sizes_of(admin, PART_TABLE, rows),
        }
        conn = psycopg.connect(url, autocommit=True)
        try:
            progress(
                f"  VACUUM ANALYZE {vacuum['one']:.1f} s + {vacuum['part']:.1f} s; reads, "
                f"{samples} one-week samples"
            )
            reads = measure_reads(conn, users, now, samples, seed)
            progress(f"  page writes, {write_rounds} rounds")
            conn.autocommit = False
            user_of = {credential.pk: user_id for user_id, credential in credentials.items()}
            pairs = [
                (credential_id, user_of[credential_id], calendar_id)
                for credential_id, ids in calendars.items()
                for calendar_id in ids
                if credential_id in user_of
            ]
            writes = measure_writes(conn, pairs, write_rounds, seed)
        finally:
            conn.close()
        with admin.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {PART_TABLE}")
            row = cur.fetchone()
        assert row is not None
        still_equal = int(row[0]) == rows
    finally:
        drop_partitioned(admin)
        admin.close()
    return {
        "partitions": PARTITIONS,
        "partition_key": "HASH (credential_id)",
        "rows": rows,
        "build": built,
        "vacuum_seconds": vacuum,
        "sizes": sizes,
        "reads": reads,
        "writes": writes,
        "rows_equal_after_writes": still_equal,
        "differences": [
            "primary key (id, credential_id) instead of (id): a partitioned table's unique "
            "constraints must contain the partition key",
            "id defaults to a sequence instead of an identity column (none on a partitioned "
            "table before PostgreSQL 17)",
            "extended statistics on the parent and on each partition",
        ],
    }
