"""The store: where the books live (SQLite by default, PostgreSQL in production).

`Store` opens any SQLAlchemy URL, creates the schema (or refuses a ledger whose schema is
not this version's: ledger/schema_version.py), hands out transactions, and
writes a whole batch with bulk inserts in one transaction (`write_batch`): a batch is
visible completely or not at all. Reads come back as pandas frames. Everything is
parameterised SQL; nothing here knows the recognition rules.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.sql.elements import TextClause

from ledger import schema
from ledger.journal import JournalBatch, require_valid
from ledger.locks import require_open, share_posting_lock
from ledger.once import Once
from ledger.row_text import line_text, text_buffer
from ledger.schema_version import read_ledger_schema, require_current
from ledger.upgrade import create_ledger, install_store_guards

DEFAULT_SQLITE_FILE = "creditbooks.db"
_IN_CLAUSE_CHUNK = 500
COPY_BLOCK_ROWS = 50_000


def default_database_url() -> str:
    """`$CREDITBOOKS_DB`, else a SQLite file in the working directory."""
    return os.environ.get("CREDITBOOKS_DB") or f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


class StoreNotInitialisedError(RuntimeError):
    """The database has no creditbooks schema; run `creditbooks init`."""


def _plain_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as Python objects: instants naive UTC, None for missing."""
    converted = frame.copy()
    for column in converted.columns:
        series = converted[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            converted[column] = series.dt.tz_convert("UTC").dt.tz_localize(None)
    converted = converted.astype(object)
    return converted.where(converted.notna(), None)


def frame_to_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values: None for missing, naive UTC datetimes for instants."""
    records = _plain_values(frame).to_dict("records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                record[key] = value.to_pydatetime()
            elif hasattr(value, "item") and not isinstance(value, str):
                record[key] = value.item()
    return records


class Store:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_database_url()
        self.engine: Engine = _create_engine(self.url)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def initialise(self) -> None:
        """A fresh database gets the tables at this version's schema revision; an existing
        ledger is never changed silently: it must be at that revision (else the error says
        to run `creditbooks upgrade`), and only its guards are installed again."""
        with self.engine.connect() as connection:
            found = read_ledger_schema(connection)
        if found.is_empty:
            create_ledger(self.url)
            return
        require_current(found)
        with self.transaction() as connection:
            install_store_guards(connection)

    def require_initialised(self) -> None:
        """The ledger exists and is at the schema revision this version needs."""
        with self.engine.connect() as connection:
            found = read_ledger_schema(connection)
        if found.is_empty:
            raise StoreNotInitialisedError(
                f"no creditbooks ledger at {redacted(self.url)}; run `creditbooks init` first"
            )
        require_current(found)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def read_frame(self, sql: str, **parameters) -> pd.DataFrame:
        with self.engine.connect() as connection:
            return read_frame(connection, sql, **parameters)

    def dispose(self) -> None:
        self.engine.dispose()


class ReadOnceStore(Store):
    """The same books, where a read asked for again is answered from the first answer.

    For one read-only pass over books that are not changing under it: a close's reports
    ask for the same lot states, costs and slices several times. Only `read_frame` is
    remembered, keyed by its SQL and parameters; every caller gets its own copy, so a
    report that adds a column cannot change what the next one reads. Writes go to the
    books as ever, and nothing is remembered past the object's life. Threads may share it:
    a read asked for by two at once runs once (`ledger.once`)."""

    def __init__(self, store: Store) -> None:
        self.url = store.url
        self.engine = store.engine
        self._frames = Once()

    def read_frame(self, sql: str, **parameters) -> pd.DataFrame:
        return self._frames.get(_read_key(sql, parameters), lambda: super(
            ReadOnceStore, self).read_frame(sql, **parameters)).copy()

    def read_elsewhere(self, executor: Executor, sql: str, **parameters) -> None:
        """Start a read on `executor` (another process, say); whoever asks for it later
        waits for its answer."""
        self._frames.adopt(_read_key(sql, parameters),
                           executor.submit(read_frame_at, self.url, sql, parameters))


def _read_key(sql: str, parameters: dict) -> tuple:
    return sql, tuple(sorted(parameters.items()))


@contextmanager
def store_at(url: str) -> Iterator[Store]:
    """The books at `url` over an engine of its own, disposed after (for work run in
    another process or thread)."""
    store = Store(url)
    try:
        yield store
    finally:
        store.dispose()


def read_frame_at(url: str, sql: str, parameters: dict) -> pd.DataFrame:
    """`read_frame` on the books at `url`, over a connection of its own."""
    with store_at(url) as store:
        return store.read_frame(sql, **parameters)


def read_frame(connection: Connection, sql: str | TextClause, **parameters) -> pd.DataFrame:
    """Rows as a frame; missing text stays None (pandas would otherwise make it NaN)."""
    result = connection.execute(text(sql) if isinstance(sql, str) else sql, parameters)
    return _frame(list(result.keys()), _fetched(connection, result))


def _fetched(connection: Connection, result) -> list[tuple]:
    # A text() query has no result processors, so on SQLite the driver's own tuples are the
    # values; skipping SQLAlchemy's rows is a third of a large read.
    return (result.cursor.fetchall() if connection.dialect.name == "sqlite"
            else result.fetchall())


def _frame(names: list[str], rows: list[tuple]) -> pd.DataFrame:
    values = list(zip(*rows, strict=True)) or [()] * len(names)
    return pd.DataFrame({name: _column(column) for name, column in zip(names, values, strict=True)},
                        columns=names)


def _column(values: tuple) -> pd.Series:
    """One result column: Arrow infers its type in one pass; text stays object, str or None."""
    if not values:
        return pd.Series(values, dtype=object)
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: leave the inference to pandas
        return pd.Series(values)
    if pa.types.is_string(array.type) or pa.types.is_null(array.type):
        return pd.Series(array.to_numpy(zero_copy_only=False), dtype=object)
    return array.to_pandas()


def read_in_chunks(
    connection: Connection, sql_with_ids: str, ids: Iterable[str], columns: list[str]
) -> pd.DataFrame:
    """Run `sql_with_ids` (which has an expanding `:ids` parameter) over ids in chunks."""
    statement = text(sql_with_ids).bindparams(bindparam("ids", expanding=True))
    unique_ids = sorted(set(ids))
    rows = []
    for start in range(0, len(unique_ids), _IN_CLAUSE_CHUNK):
        chunk = unique_ids[start : start + _IN_CLAUSE_CHUNK]
        rows += _fetched(connection, connection.execute(statement, {"ids": chunk}))
    return _frame(columns, rows)


def insert_frame(connection: Connection, table, frame: pd.DataFrame) -> None:
    """Append the frame's rows to the table: COPY on PostgreSQL, bulk INSERT elsewhere."""
    if not len(frame):
        return
    if connection.dialect.name == "postgresql":
        _copy_frame(connection, table.__table__.name, frame)
    elif connection.dialect.name == "sqlite":
        sql_table = table.__table__
        placeholders = ", ".join("?" for _ in frame.columns)
        # Names only (the table's and the frame's columns, both from code); values bound.
        connection.exec_driver_sql(
            f"INSERT INTO {sql_table.name} ({', '.join(frame.columns)}) VALUES ({placeholders})",
            _sqlite_rows(sql_table, frame))
    else:
        connection.execute(insert(table.__table__), frame_to_records(frame))


def _sqlite_rows(sql_table, frame: pd.DataFrame) -> list[tuple]:
    """Rows as SQLite stores them through SQLAlchemy, converted a column at a time.

    Instants become naive-UTC 'YYYY-MM-DD HH:MM:SS.ffffff' text and dates 'YYYY-MM-DD'
    (SQLAlchemy's own SQLite formats, so its readers parse them back), flags 1/0, missing
    values None; no Python call per value on the way in.
    """
    columns = []
    for name in frame.columns:
        column_type, series = sql_table.c[name].type, frame[name]
        if isinstance(column_type, DateTime | Date):
            instants = pd.to_datetime(series, utc=True)
            pattern = "%Y-%m-%d %H:%M:%S.%f" if isinstance(column_type, DateTime) else "%Y-%m-%d"
            text = instants.dt.strftime(pattern).astype(object)
            columns.append(text.where(instants.notna(), None).tolist())
        elif isinstance(column_type, Boolean):
            columns.append(series.astype(bool).astype(int).tolist())
        elif pd.api.types.is_integer_dtype(series.dtype) and not series.hasnans:
            columns.append(series.tolist())  # Python ints, as the driver binds them
        else:
            values = series.astype(object)
            columns.append(values.where(series.notna(), None).tolist())
    return list(zip(*columns, strict=True))


def _copy_frame(connection: Connection, table_name: str, frame: pd.DataFrame) -> None:
    """PostgreSQL's COPY, fed blocks of COPY text built column by column in Arrow.

    A writer thread sends each block while this thread builds the next, so the server
    works through one block while the next is being written; the blocks also bound the
    text held at once.
    """
    from psycopg.copy import QueuedLibpqWriter  # only PostgreSQL needs its driver loaded

    # Names only (the table's and the frame's columns, both from code); values go as data.
    with connection.connection.dbapi_connection.cursor() as cursor:
        statement = f"COPY {table_name} ({', '.join(frame.columns)}) FROM STDIN"
        with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
            for start in range(0, len(frame), COPY_BLOCK_ROWS):
                copy.write(copy_text(frame.iloc[start:start + COPY_BLOCK_ROWS]))


# COPY's text format: these characters inside a value are written backslash-escaped.
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def copy_text(frame: pd.DataFrame) -> bytes:
    """The frame in COPY text format: tab-separated, one row a line, NULL as \\N.

    Instants are written as naive UTC, text is escaped, other values as Arrow writes them
    (ISO dates, decimal digits, true/false); no Python call per value.
    """
    fields = []
    for name in frame.columns:
        values = _arrow_values(frame[name])
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            for character, escaped in _COPY_ESCAPES:
                values = pc.replace_substring(values, character, escaped)
        fields.append(pc.fill_null(values.cast(pa.large_string()), "\\N"))
    offsets, content = text_buffer(line_text(fields, separator="\t"))
    return bytes(content[offsets[0]:offsets[-1]])


def _arrow_values(series: pd.Series) -> pa.Array:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: their own text
        values = pa.array(series.map(lambda value: None if pd.isna(value) else str(value)),
                          type=pa.large_string(), from_pandas=True)
    if pa.types.is_timestamp(values.type) and values.type.tz is not None:
        values = values.cast(pa.timestamp(values.type.unit, "UTC")).cast(
            pa.timestamp(values.type.unit))
    return values


def post_journal(connection: Connection, journal: JournalBatch, attributes: dict) -> None:
    """Check the journal balances and its periods are open, then append entries and lines."""
    require_valid(journal, source=f"batch {attributes.get('batch_id', '(unnamed)')}")
    entries = journal.entries.assign(**attributes)
    share_posting_lock(connection)
    require_open(connection, set(entries["period"]))
    insert_frame(connection, schema.JournalEntryRecord, entries)
    insert_frame(connection, schema.JournalLineRecord, journal.lines)


def replace_lot_balances(connection: Connection, balances: pd.DataFrame) -> None:
    """Rewrite the running totals of existing lots (the one projection that changes)."""
    if not len(balances):
        return
    table = schema.LotBalance.__table__
    value_columns = [c for c in balances.columns if c != "purchase_id"]
    if connection.dialect.name == "sqlite":
        ordered = balances[[*value_columns, "purchase_id"]]
        assignments = ", ".join(f"{column} = ?" for column in value_columns)
        connection.exec_driver_sql(
            f"UPDATE lot_balances SET {assignments} WHERE purchase_id = ?",
            _sqlite_rows(table, ordered))
        return
    statement = (
        update(table)
        .where(table.c.purchase_id == bindparam("key_purchase_id"))
        .values({column: bindparam(column) for column in value_columns})
    )
    records = frame_to_records(balances.rename(columns={"purchase_id": "key_purchase_id"}))
    connection.execute(statement, records)


def record_stage(connection: Connection, batch_id: str, stage: str, recorded_at,
                 shard: int = 0, shard_count: int = 1) -> None:
    connection.execute(insert(schema.BatchStage.__table__), [{
        "batch_id": batch_id, "stage": stage, "shard": shard, "shard_count": shard_count,
        "recorded_at": recorded_at}])


def completed_stages(connection: Connection, batch_id: str) -> pd.DataFrame:
    return read_frame(connection, "SELECT stage, shard, shard_count FROM batch_stages "
                      "WHERE batch_id = :batch_id ORDER BY stage, shard", batch_id=batch_id)


def batch_for_date(connection: Connection, business_date) -> dict | None:
    table = schema.Batch.__table__
    row = connection.execute(
        select(table).where(table.c.business_date == business_date)
    ).mappings().first()
    return dict(row) if row else None


def _create_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA cache_size = -262144")
            cursor.execute("PRAGMA temp_store = MEMORY")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
