"""The store's own table in diskcache's SQLite database: one row per task.

A row holds a task's record (a plain dict, pickled) and, when its pickle is small,
the pickled bytes of its value, so storing a result is ONE statement. Through
diskcache it was two `Cache.set` (value, record), each a SELECT, then an INSERT
or UPDATE firing diskcache's count and size triggers, for a key pickled first:
~98 µs of a ~290 µs task (chain of 1,000 trivial tasks, cold).

A larger value stays a diskcache row (`FILE_KEY` + name; `value` is NULL here)
holding its file, so diskcache's own bookkeeping of value files (`clear`, `check`,
removing a replaced file) keeps covering every file. Every statement runs on
diskcache's connection (`sql` is the cache's `_sql`, handed over by the store, the
room that reaches into diskcache), inside the transaction that writes the value
file's row, so both commit or neither does; a lone row with a small value is one
statement, its own transaction.

`records` selects the record column only: deciding freshness never reads a value.
"""

from __future__ import annotations

import functools
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from .cachedisk import RECORDS_TABLE as TABLE
from .log import lib_logger

#: Names per SELECT (SQLite allows 999 variables in old builds).
CHUNK = 500

Sql = Callable[..., Any]
Row = tuple[str, bytes, bytes | None]  # name, pickled record, pickled value (or NULL)

#: The diskcache key of a large value's row: this prefix and the task's name.
FILE_KEY = "lp:file:"

# The upsert updates a row in place: replacing rows (a rerun) measured ~3 µs a row
# against ~7 with INSERT OR REPLACE (a delete and an insert), new rows the same
# (~6). It needs SQLite 3.24 (2018); Python links whatever SQLite the system has.
_UPSERT = (f"INSERT INTO {TABLE}(name, record, value) {{}} ON CONFLICT(name) "
           "DO UPDATE SET record = excluded.record, value = excluded.value")
_REPLACE = f"INSERT OR REPLACE INTO {TABLE}(name, record, value) {{}}"
_WRITE = _UPSERT if sqlite3.sqlite_version_info >= (3, 24) else _REPLACE
# A row with a small value is written only if its task has no large value's row in
# diskcache's table (a look-up of diskcache's key index inside the statement): such a
# row must go with it, through `Store` (`Filed`). Asked of the rows themselves, this
# holds whoever stored a large value before (another process too), and needs no
# statement of its own: it was a PRAGMA data_version each write, and a SELECT once
# another connection had committed; now a write can be one statement (autocommit).
_SMALL_UNFILED = ("SELECT column1, column2, column3 FROM (VALUES {}) WHERE column3 IS NULL "
                  f"OR NOT EXISTS (SELECT 1 FROM Cache WHERE key = '{FILE_KEY}' || column1 "
                  "AND raw = 1)")
_WRITE_ONE = _WRITE.format(_SMALL_UNFILED.format("(?, ?, ?)"))

# A group's rows go in one statement (~1 us a row less than a statement each, 64 rows);
# 300 rows at most: 3 variables a row, under the 999 of old SQLite builds.
_ROWS = 300


class Filed(Exception):
    """Rows with a small value were not written: their tasks have a large value's row,
    which must be deleted with it (`Store` does, in the same transaction)."""


def create(sql: Sql) -> None:
    """Create the table if this database has none yet (a store of an older version)."""
    exists = sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                 (TABLE,)).fetchone()
    if exists is None:
        sql(f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " name TEXT PRIMARY KEY NOT NULL, record BLOB NOT NULL, value BLOB)")


def encode(record: dict[str, Any]) -> bytes:
    """A record's bytes: pickle of a plain dict, readable by any later version."""
    return pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


def decode(blob: bytes) -> dict[str, Any]:
    """A record from its bytes; raises whatever unpickling raises for damaged bytes."""
    record = pickle.loads(blob)
    if not isinstance(record, dict):
        raise TypeError(f"a stored record must be a dict, got a {type(record).__name__}")
    return record


def decoded(name: str, stored: bytes | Callable[[], Any],
            errors: tuple[type[BaseException], ...] = ()) -> dict[str, Any] | None:
    """A record from its bytes (or from `stored()`, a read of the previous version's
    key); None if there is none or it cannot be read: a damaged pickle counts as no
    record (the task reruns), with a warning. `errors` (the database's) propagate."""
    try:
        rec = decode(stored) if isinstance(stored, bytes) else stored()
    except errors:
        raise
    except OSError:  # a record's file removed meanwhile: as `Cache.get`, no record
        return None
    except Exception as e:
        lib_logger.warning("The stored record of task {!r} could not be read ({}: {}); it "
                           "will run again.", name, type(e).__name__, e)
        return None
    return rec if isinstance(rec, dict) else None


def write(sql: Sql, rows: list[Row]) -> None:
    """Store each task's record with its small value (or NULL), replacing its row: one
    statement for up to 300 rows. Raises `Filed` if a row with a small value was left
    out (its task has a large value's row): the rows of the same statement were written."""
    if len(rows) == 1:
        if not sql(_WRITE_ONE, rows[0]).rowcount:
            raise Filed(rows[0][0])
        return
    for i in range(0, len(rows), _ROWS):
        chunk = rows[i:i + _ROWS]
        done = sql(_write_many(len(chunk)), tuple(field for row in chunk for field in row))
        if done.rowcount != len(chunk):
            raise Filed(*(name for name, _r, _v in chunk))


@functools.lru_cache(maxsize=64)
def _write_many(count: int) -> str:
    return _WRITE.format(_SMALL_UNFILED.format(", ".join(["(?, ?, ?)"] * count)))


def records(sql: Sql, names: list[str]) -> Iterator[tuple[str, bytes]]:
    """(name, pickled record) of each of `names` that has a row: one SELECT per 500
    names, of the record column only."""
    for i in range(0, len(names), CHUNK):
        chunk = names[i:i + CHUNK]
        yield from sql(f"SELECT name, record FROM {TABLE} WHERE name IN "
                       f"({','.join('?' * len(chunk))})", chunk).fetchall()


def record(sql: Sql, name: str) -> bytes | None:
    row = sql(f"SELECT record FROM {TABLE} WHERE name = ?", (name,)).fetchone()
    return None if row is None else bytes(row[0])


def value(sql: Sql, name: str) -> tuple[bool, bytes | None]:
    """(whether `name` has a row, its small value's bytes or None)."""
    row = sql(f"SELECT value FROM {TABLE} WHERE name = ?", (name,)).fetchone()
    if row is None:
        return False, None
    return True, None if row[0] is None else bytes(row[0])


def names(sql: Sql) -> list[str]:
    return [name for (name,) in sql(f"SELECT name FROM {TABLE} ORDER BY name").fetchall()]


def set_record(sql: Sql, name: str, blob: bytes | None, *, drop_value: bool = False) -> bool:
    """Replace the record of `name` (None: keep it) and drop its small value if asked;
    False if it has no row."""
    extra = ", value = NULL" if drop_value else ""
    done = sql(f"UPDATE {TABLE} SET record = coalesce(?, record){extra} WHERE name = ?",
               (blob, name))
    return bool(done.rowcount)


def delete(sql: Sql, name: str) -> bool:
    """Delete the row of `name`; whether there was one."""
    return bool(sql(f"DELETE FROM {TABLE} WHERE name = ?", (name,)).rowcount)

