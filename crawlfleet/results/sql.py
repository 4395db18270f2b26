"""A spider's results as a table in PostgreSQL or MySQL/MariaDB (SQLAlchemy Core).

The table is made on first write and named like the results collection
(``results_<spider>``)::

    _rowid     BIGINT auto-increment PRIMARY KEY
    _key       CHAR(64) NULL UNIQUE  -- SHA-256 of the dedup key values; NULL without dedup
    _tid       VARCHAR(64) NOT NULL  -- the task (attempt) that last wrote the row; indexed
    _at        DOUBLE NOT NULL       -- when it was last written (UTC epoch seconds)
    _first_at  DOUBLE NULL           -- when the key was first written
    item       JSON (JSONB on PostgreSQL) -- the whole item
    <field>    one typed column per scalar field: BOOLEAN, BIGINT, DOUBLE or TEXT,
               added (ALTER TABLE) the first time a field appears

The dedup key is a hash, not the key columns themselves: MySQL cannot make a
unique index over TEXT columns, and a URL outgrows any VARCHAR prefix.
With a dedup policy rows are upserted on ``_key`` (``overwrite``: the new
version replaces every column but ``_first_at``; ``ignore``: the first stays);
without one they are inserted. A value whose type differs from its column's
is kept in ``item`` only (its column is NULL in that row).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from crawlfleet.results.dedup import DedupPolicy

RESERVED = ("_rowid", "_key", "_tid", "_at", "_first_at", "item")
SKIPPED = ("_id", "task_id", "_superseded_by")  # the store's own, or `_tid` again
NAME_RE = re.compile(r"[^A-Za-z0-9_]")
MAX_NAME = 60


def column_name(field: str) -> str | None:
    name = NAME_RE.sub("_", field)[:MAX_NAME]
    if not name or name in RESERVED or field in SKIPPED:
        return None
    return name.lower()  # MySQL and PostgreSQL fold differently; lower case is portable


def column_type(value: Any):
    if isinstance(value, bool):
        return sa.Boolean()
    if isinstance(value, int):
        return sa.BigInteger() if -2**63 <= value < 2**63 else None
    if isinstance(value, float):
        return sa.Double()
    if isinstance(value, str):
        return sa.Text()
    return None  # containers and nulls live in `item` only


def _as_bool(value):
    return value if type(value) is bool else None


def _as_int(value):
    return value if type(value) is int and -2**63 <= value < 2**63 else None


def _as_float(value):
    return float(value) if type(value) in (int, float) else None


def _as_text(value):
    return value if type(value) is str else None


def converter(column: sa.Column):
    """A function giving a value as `column` stores it, or None when it does not fit."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return _as_bool
    if isinstance(kind, (sa.BigInteger, sa.Integer)):
        return _as_int
    if isinstance(kind, (sa.Double, sa.Float, sa.Numeric)):
        return _as_float
    if isinstance(kind, (sa.Text, sa.String)):
        return _as_text
    return lambda value: None


def fits(column: sa.Column, value: Any) -> Any:
    """`value` as its column stores it, or None when it does not fit."""
    return None if value is None else converter(column)(value)


def json_default(value: Any) -> Any:
    return str(value)


# One encoder each, made once (json.dumps with options builds one per call).
# `dumps`: a stored item as JSON text, what JSON lacks (ObjectId, dates) as text.
dumps = json.JSONEncoder(default=json_default).encode
_key_text = json.JSONEncoder(sort_keys=True, default=str).encode


def make_engine(url, **kwargs) -> sa.Engine:
    """An engine whose JSON columns take any stored value (ObjectId, dates: as text)."""
    return sa.create_engine(url, json_serializer=dumps, **kwargs)


def engine_json_dumps(engine: sa.Engine):
    """How `engine` writes JSON (`make_engine`'s, else the standard one)."""
    return getattr(engine.dialect, "_json_serializer", None) or json.dumps


def key_hash(policy: DedupPolicy, item: Mapping) -> str:
    values = [item.get(k) for k in policy.keys]
    return hashlib.sha256(_key_text(values).encode()).hexdigest()


def json_safe(item: Mapping) -> dict:
    """The item for the JSON column; the engine's serializer (`make_engine`)
    turns what JSON lacks into text."""
    return {k: v for k, v in item.items() if k != "_id"}


class SqlTable:
    """One results table on one database; safe to share between threads."""

    def __init__(self, engine: sa.Engine, name: str):
        self.engine = engine
        self.name = name
        self.lock = threading.RLock()  # forget() runs inside drop()
        self.table: sa.Table | None = None
        self.backfilled: set = set()
        self.names: dict[str, str] = {}  # field -> column name ('' for none)
        self.converters: dict[str, Any] = {}  # column name -> converter
        self.fields: dict[str, tuple] = {}  # field -> (column name, converter) or ()
        self.statements: dict[str | None, tuple[str, dict]] = {}  # mode -> (SQL, blank row)
        self.dump = engine_json_dumps(engine)

    # -- layout ----------------------------------------------------------------
    def _json_type(self):
        return postgresql.JSONB() if self.engine.dialect.name == "postgresql" else sa.JSON()

    def _load(self) -> sa.Table:
        if self.table is not None:
            return self.table
        metadata = sa.MetaData()
        if sa.inspect(self.engine).has_table(self.name):
            self.table = self._reflect()
            return self.table
        table = sa.Table(
            self.name, metadata,
            sa.Column("_rowid", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                      primary_key=True, autoincrement=True),
            sa.Column("_key", sa.CHAR(64), nullable=True, unique=True),
            sa.Column("_tid", sa.String(64), nullable=False, index=True),
            sa.Column("_at", sa.Double(), nullable=False),
            sa.Column("_first_at", sa.Double(), nullable=True),
            sa.Column("item", self._json_type()),
        )
        table.create(self.engine, checkfirst=True)
        self.table = self._reflect()
        return self.table

    def _reflect(self) -> sa.Table:
        # MariaDB reports a JSON column as LONGTEXT: say what `item` holds
        table = sa.Table(self.name, sa.MetaData(), sa.Column("item", self._json_type()),
                         autoload_with=self.engine)
        self.converters = {c.name: converter(c) for c in table.c if c.name not in RESERVED}
        self.fields = {}  # a new column: fields map and statements are made anew
        self.statements = {}
        return table

    def _widen(self, items: list[Mapping]) -> sa.Table:
        """Add a typed column for each scalar field the table lacks."""
        table = self._load()
        missing: dict[str, Any] = {}
        names = self.names
        for item in items:
            for field, value in item.items():
                name = names.get(field)
                if name is None:
                    name = names[field] = column_name(field) or ""
                if name and name not in self.converters and name not in missing:
                    kind = column_type(value)
                    if kind is not None:
                        missing[name] = kind
        if missing:
            preparer = self.engine.dialect.identifier_preparer
            with self.engine.begin() as conn:
                for name, kind in missing.items():
                    ddl = kind.compile(dialect=self.engine.dialect)
                    conn.execute(sa.text(
                        f"ALTER TABLE {preparer.quote(self.name)} "
                        f"ADD COLUMN {preparer.quote(name)} {ddl} NULL"))
            self.table = self._reflect()
            return self.table
        assert self.table is not None  # made or reflected before any column is missing
        return self.table

    # -- writes ----------------------------------------------------------------
    def write(self, items: Iterable[Mapping], policy: DedupPolicy | None) -> int:
        """Insert, or upsert on the dedup key, one batch in one transaction.

        The statement is built by SQLAlchemy's dialect (``insert()`` with
        ``on_conflict_do_update`` / ``on_duplicate_key_update``), compiled once
        per table layout and mode, and sent with the driver's executemany:
        psycopg 3 pipelines the rows in one round trip, PyMySQL rewrites them
        into one multi-row INSERT. Rows are plain dicts the statement's binds
        name, their JSON already text (one encoding per item), so no
        per-row parameter processing happens in Python after `_row`."""
        items = list(items)
        if not items:
            return 0
        try:
            return self._write(items, policy)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):
            # another process may have changed the table (dropped it with its
            # results collection, added a column first): learn it anew, once
            self.forget()
            return self._write(items, policy)

    def forget(self) -> None:
        """Forget what is known of the table: it is looked up again on next use."""
        with self.lock:
            self.table, self.backfilled, self.statements = None, set(), {}
            self.converters, self.fields = {}, {}

    def _write(self, items: list[Mapping], policy: DedupPolicy | None) -> int:
        with self.lock:
            table = self._widen(items)
            if policy is not None and policy.keys not in self.backfilled:
                self._backfill_keys(table, policy)
                self.backfilled.add(policy.keys)
            sql, blank = self._compiled(table, policy)
            rows = [self._row(blank, item, policy) for item in items]  # maps of this layout
        if policy is not None:
            rows = list({row["_key"]: row for row in rows}.values())  # last copy in a batch wins
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)
        return len(rows)

    def _compiled(self, table: sa.Table, policy: DedupPolicy | None) -> tuple[str, dict]:
        """The batch statement's SQL for this layout and mode, and a row of NULLs
        naming its binds (cached until the table gains a column)."""
        key = policy.mode if policy is not None else None
        cached = self.statements.get(key)
        if cached is None:
            blank = dict.fromkeys(c.name for c in table.c if c.name != "_rowid")
            compiled = self._statement(table, policy).compile(
                dialect=self.engine.dialect, column_keys=list(blank),
                for_executemany=True)  # as execute() compiles it for many rows: no RETURNING
            # psycopg and PyMySQL bind by name: each row's dict is passed as it is
            if compiled.positiontup or set(compiled.binds) != set(blank):
                raise ValueError(f"unexpected binds in {compiled.string!r}")
            cached = self.statements[key] = (compiled.string, blank)
        return cached

    def _row(self, blank: dict, item: Mapping, policy: DedupPolicy | None) -> dict:
        row = dict(blank)
        fields = self.fields
        for field, value in item.items():
            target = fields.get(field)
            if target is None:
                name = self.names.get(field)
                if name is None:
                    name = self.names[field] = column_name(field) or ""
                convert = self.converters.get(name)
                target = fields[field] = (name, convert) if convert is not None else ()
            if target and value is not None:
                row[target[0]] = target[1](value)
        row.update({"_tid": item["_tid"], "_at": item["_at"],
                    "_first_at": item.get("_first_at") or item["_at"],
                    "item": self.dump(json_safe(item)),
                    "_key": key_hash(policy, item) if policy is not None else None})
        return row

    def _statement(self, table, policy):
        dialect = self.engine.dialect.name
        if policy is None:
            return table.insert()
        kept = [c.name for c in table.c if c.name not in ("_rowid", "_key", "_first_at")]
        if dialect == "postgresql":
            stmt = postgresql.insert(table)
            if policy.mode == "ignore":
                return stmt.on_conflict_do_nothing(index_elements=["_key"])
            return stmt.on_conflict_do_update(index_elements=["_key"],
                                              set_={c: stmt.excluded[c] for c in kept})
        if dialect in ("mysql", "mariadb"):
            stmt = mysql.insert(table)
            if policy.mode == "ignore":
                return stmt.on_duplicate_key_update(_key=stmt.inserted["_key"])
            return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in kept})
        raise ValueError(f"no upsert for SQL dialect {dialect!r}")

    def _backfill_keys(self, table, policy: DedupPolicy) -> None:
        """Rows stored before deduplication was turned on get their key; of rows
        sharing one, the newest stays (it takes the oldest's first-seen time)."""
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(table.c._rowid, table.c._at, table.c._first_at,
                                          table.c.item).where(table.c._key.is_(None))).all()
            if not rows:
                return
            groups: dict[str, list] = {}
            for row in rows:
                item = row.item if isinstance(row.item, dict) else json.loads(row.item)
                groups.setdefault(key_hash(policy, item), []).append(row)
            taken = {k for (k,) in conn.execute(
                sa.select(table.c._key).where(table.c._key.in_(list(groups)))).all()}
            for key, members in groups.items():
                members.sort(key=lambda r: (r._at, r._rowid))
                doomed = [r._rowid for r in members[:-1]]
                if key in taken:  # a keyed row exists already: it is the newer one
                    doomed.append(members[-1]._rowid)
                else:
                    first = min(r._first_at or r._at for r in members)
                    conn.execute(table.update().where(table.c._rowid == members[-1]._rowid)
                                 .values(_key=key, _first_at=first))
                if doomed:
                    conn.execute(table.delete().where(table.c._rowid.in_(doomed)))

    def exists(self) -> bool:
        """Whether the table is on the server now (another process may have
        dropped it: then what was known of it is forgotten)."""
        if sa.inspect(self.engine).has_table(self.name):
            return True
        if self.table is not None:
            self.forget()
        return False

    def delete_tasks(self, task_ids: list[str], first_since: float | None = None) -> int:
        """Delete the rows tasks `task_ids` wrote last (first seen at or after
        `first_since`, when given); a table not made yet holds none."""
        if not task_ids or not self.exists():
            return 0
        table = self._load()
        where: sa.ColumnElement[bool] = table.c._tid.in_(task_ids)
        if first_since is not None:
            where = sa.and_(where, table.c._first_at >= first_since)
        with self.engine.begin() as conn:
            return conn.execute(table.delete().where(where)).rowcount

    def drop(self) -> int:
        """Drop the table; returns how many rows it held (0 when there was none)."""
        with self.lock:
            if not self.exists():
                return 0
            table = self._load()
            with self.engine.begin() as conn:
                rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                table.drop(conn, checkfirst=True)
        self.forget()
        return rows

    def count(self) -> int:
        table = self._load()
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
