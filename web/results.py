"""The results browser: any spider's results collection as a table, with
filters (the safe language of `web.filters`), sorting, keyset pagination and
streamed exports of the filtered set.

Pages never skip and never count: the next page starts after the last row's
sort key (and ``_id`` to break ties), so page 20,000 costs what page 1 does
when the sort is index-backed. The default order is newest first by ``_at``,
the insertion time crawlfleet stores with every item (indexed, see
`crawlfleet.store.RESULTS_INDEXES`); rows without it (stored before it
existed, or by other code) follow, newest ``_id`` first. A collection without
the ``_at`` index is shown by ``_id``, which nx-27017 cannot page fast deep in
a big collection: it scans every row for a range on ``_id``.

Sorting is offered on ``_id``, on indexed fields, and on any field of a
collection small enough to sort in full. Documents whose sort field is missing
or of another type than the cursor's value are left out of later pages when
sorting by another field (MongoDB compares within one type); sort by ``_id``
to see every row.
"""

import base64
import datetime
import itertools
import sys
import time

from bson import ObjectId, json_util
from bson.errors import BSONError
from flask import Blueprint, Response, abort, render_template, request, stream_with_context, url_for
from flask_babel import gettext

from crawlfleet.errors import BadRequest
from crawlfleet.models import is_results_collection
from web import auth, export, filterhints, filters, jsonbody, services
from web.appcache import cached

bp = Blueprint("results", __name__, url_prefix="/results")
bp.before_request(auth.login_required_for_blueprint)

PAGE = 50
COLUMN_SAMPLE = 100           # newest rows whose keys make the columns
SORT_ANY_BELOW = 20_000       # rows under which any column may be sorted
COUNT_EVERY = 60              # seconds between estimated counts of a collection
TIE_SCAN = 1000               # rows sharing a sort value that are filtered here
HIDDEN = ("_id",)
STAMP = "_at"                 # insertion time of an item: the default order when indexed
LAST = ("_tid", "task_id", "_first_at", STAMP)
# what crawlfleet's own fields mean, as column heads: with dedup `_at` is the
# last write of the row and `_first_at` the first, `_tid` the task that last wrote it
LABELS = {"_tid": "last written by", "_at": "last seen", "_first_at": "first seen",
          "_superseded_by": "superseded by"}
SCALARS = (str, int, float, bool, type(None), ObjectId, datetime.datetime)


def results_collections(store):
    """{collection: [spiders writing to it]}: only results collections, never the ledger."""
    out = {}
    for doc in store.spiders.find({}, {"results_collection": 1}):
        # (a name outside the namespace, stored before uploads checked it, is never shown)
        if is_results_collection(doc.get("results_collection")):
            out.setdefault(doc["results_collection"], []).append(doc["_id"])
    for name in store.db.list_collection_names():
        if is_results_collection(name):
            out.setdefault(name, [])
    return dict(sorted(out.items()))


def get_collection(name):
    store = services().store
    if name not in results_collections(store):
        abort(404, gettext("no results collection named %(name)r", name=name))
    return store.db[name]


def estimated_rows(collection):
    """The collection's estimated size, read at most once a minute: O(1) on
    MongoDB, but a full count on nx-27017 (45 ms at 1M rows)."""
    return cached(("rows", collection.name), int(time.monotonic() // COUNT_EVERY),
                  collection.estimated_document_count)


def sortable_fields(collection, size):
    indexed = {info["key"][0][0] for info in collection.index_information().values()}
    return indexed, size <= SORT_ANY_BELOW


def encode_cursor(value, doc_id):
    raw = json_util.dumps([value, doc_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text):
    """(value, _id) of a cursor; only plain values, never a document (no operators)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value, doc_id = json_util.loads(raw)
        for part in (value, doc_id):
            if not isinstance(part, SCALARS):
                raise ValueError("not a plain value")
            # what the store cannot take: ints past 64 bits, NaN/inf, lone surrogates
            jsonbody.check_plain(part, "cursor")
    except (ValueError, TypeError, ArithmeticError, RecursionError, BSONError, BadRequest):
        raise BadRequest("invalid page cursor") from None
    return value, doc_id


def default_field(indexed):
    return STAMP if STAMP in indexed else "_id"


def ordered(collection, query, field, direction, sort, limit):
    """The first `limit` rows of `query` in the order `sort`: by (`field`, `_id`).

    In `_at` order the server sorts by `_at` alone, which its index serves:
    given a sort on two keys and a filter on another indexed field, nx-27017
    reads every row the filter matches through that field's index and sorts
    them (35 ms for 1% of 1M rows). Rows sharing an `_at` are put in `_id`
    order here; one row more than asked shows whether the limit cuts the rows
    of the last value, which are then read again in `_id` order (rare: `_at`
    is unique within a write).
    """
    if field != STAMP:
        return list(collection.find(query).sort(sort).limit(limit))
    rows = list(collection.find(query).sort(STAMP, direction).limit(limit + 1))
    groups = [sorted(group, key=lambda d: d["_id"], reverse=direction < 0)
              for _, group in itertools.groupby(rows, key=lambda d: d.get(STAMP))]
    if len(rows) > limit:
        last = groups.pop()  # holds the extra row; complete without it when it is alone
        if len(last) > 1:
            # a matching row's value: it meets any condition of `query` on `_at`
            groups.append(list(collection.find({**query, STAMP: last[0].get(STAMP)})
                               .sort("_id", direction).limit(limit - sum(map(len, groups)))))
    return [d for group in groups for d in group]


def after_cursor(collection, query, field, direction, sort, cursor, limit):
    """The rows after `cursor` (value, _id) in the order `sort`.

    Two index-friendly reads instead of one ``$or``: the rows that share the
    cursor's value (told apart by `_id`), then those past the value. On
    nx-27017 any comparison with an ObjectId scans the whole collection in
    Python, so the rows sharing the value are filtered here when they are
    few; on MongoDB every read below is an index range.
    """
    value, doc_id = cursor
    op = "$gt" if direction > 0 else "$lt"
    past = (lambda d: d["_id"] > doc_id) if direction > 0 else (lambda d: d["_id"] < doc_id)
    if field == "_id":
        return list(collection.find(both(query, {"_id": {op: doc_id}})).sort(sort).limit(limit))
    if field == STAMP and value is None:
        return after_unstamped(collection, query, direction, sort, doc_id, limit)
    ties = list(collection.find(both(query, {field: value})).sort("_id", direction)
                .limit(TIE_SCAN + 1))
    if len(ties) > TIE_SCAN:
        ties = list(collection.find(both(query, {field: value, "_id": {op: doc_id}}))
                    .sort("_id", direction).limit(limit))
    rows = [d for d in ties if past(d)][:limit]
    if len(rows) < limit:
        rows += ordered(collection, both(query, {field: {op: value}}), field, direction, sort,
                        limit - len(rows))
    if field == STAMP and direction < 0 and len(rows) < limit:
        # the rows without `_at` sort as null: after every stamped row
        rows += list(collection.find(both(query, {STAMP: None})).sort("_id", direction)
                     .limit(limit - len(rows)))
    return rows


def after_unstamped(collection, query, direction, sort, doc_id, limit):
    """In `_at` order, the rows after a row without `_at` (stored before it
    existed, or by other code): such rows sort as null, told apart by `_id`,
    before every stamped row in ascending order and after them in descending."""
    op = "$gt" if direction > 0 else "$lt"
    rows = list(collection.find(both(query, {STAMP: None, "_id": {op: doc_id}}))
                .sort("_id", direction).limit(limit))
    if direction > 0 and len(rows) < limit:
        # every stamped row: a range, which the index serves (nx-27017 scans the
        # collection for $type and matches missing fields with $ne: null)
        rows += ordered(collection, both(query, {STAMP: {"$gte": -sys.float_info.max}}),
                        STAMP, direction, sort, limit - len(rows))
    return rows


def both(a, b):
    if not a:
        return b
    if not b:
        return a
    if not a.keys() & b.keys():
        return {**a, **b}  # one flat query: nx-27017 scans the whole collection for $and
    return {"$and": [a, b]}


def read_view(collection):
    """Filters, query and sort of the request, checked."""
    texts = [t for t in request.args.getlist("q") if t.strip()]
    query = filters.parse(texts)
    size = estimated_rows(collection)
    indexed, any_field = sortable_fields(collection, size)
    field = request.args.get("sort") or default_field(indexed)
    filters.check_field(field)
    if field != "_id" and field not in indexed and not any_field:
        raise BadRequest(f"sorting by {field!r} needs an index on it in a collection this big")
    direction = -1 if request.args.get("dir", "desc") == "desc" else 1
    sort = [("_id", direction)] if field == "_id" else [(field, direction), ("_id", direction)]
    return texts, query, field, direction, sort, size, indexed, any_field


@bp.get("/")
def index():
    store = services().store
    rows = []
    for name, spiders in results_collections(store).items():
        rows.append({"name": name, "spiders": spiders,
                     "count": estimated_rows(store.db[name])})
    return render_template("results_index.html", collections=rows, db_name=store.db.name)


@bp.get("/<name>")
def browse(name):
    collection = get_collection(name)
    error = None
    try:
        texts, query, field, direction, sort, size, indexed, any_field = read_view(collection)
        if request.args.get("after"):
            docs = after_cursor(collection, query, field, direction, sort,
                                decode_cursor(request.args["after"]), PAGE + 1)
        else:
            docs = ordered(collection, query, field, direction, sort, PAGE + 1)
    except BadRequest as exc:
        error = str(exc)
        texts, direction = request.args.getlist("q"), -1
        size, any_field, docs = estimated_rows(collection), False, []
        indexed, _ = sortable_fields(collection, size)
        field = default_field(indexed)
    more = len(docs) > PAGE
    docs = docs[:PAGE]
    sample = list(collection.find().sort("_id", -1).limit(COLUMN_SAMPLE))
    columns = [c for c in export.csv_columns(itertools.chain(sample, docs)) if c not in HIDDEN]
    # the task id and insertion time columns go last: the same, or alike, on many rows
    columns = [c for c in columns if c not in LAST] + [c for c in LAST if c in columns]
    # an empty answer to filters: say why when the rows show it (a typo, a type)
    hints = filterhints.hints(texts, sample, columns) if texts and not docs and not error else []
    base = {"q": texts, "sort": field, "dir": "desc" if direction < 0 else "asc"}
    next_url = None
    if more:
        last = docs[-1]
        next_url = url_for("results.browse", name=name, **base,
                           after=encode_cursor(last.get(field) if field != "_id" else None,
                                               last["_id"]))
    return render_template(
        "results.html", name=name, docs=docs, columns=columns, texts=texts, error=error,
        hints=hints,
        field=field, direction=direction, size=size, next_url=next_url,
        first_url=url_for("results.browse", name=name, **base)
        if request.args.get("after") else None,
        sortable=lambda c: c == "_id" or c in indexed or any_field,
        sort_url=lambda c: url_for("results.browse", name=name, q=texts, sort=c,
                                   dir="asc" if (c == field and direction < 0) else "desc"),
        export_url=lambda fmt: url_for("results.export_view", name=name, format=fmt, **base),
        spiders=results_collections(services().store).get(name, []),
        label=lambda c: LABELS.get(c, c),
    )


def json_array(docs):
    yield "["
    for n, doc in enumerate(docs):
        yield ("," if n else "") + "\n" + export.dumps(doc, ensure_ascii=False)
    yield "\n]\n"


@bp.get("/<name>/export")
def export_view(name):
    """The filtered set, streamed a batch at a time (constant memory)."""
    collection = get_collection(name)
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json", "jsonl", "xlsx"):
        abort(400, gettext("format must be csv, json, jsonl or xlsx"))
    try:
        _, query, _, _, sort, *_ = read_view(collection)
        raw = export.raw_formulas_asked(request.args)
    except BadRequest as exc:
        abort(400, str(exc))
    docs = collection.find(query).sort(sort).batch_size(export.BATCH_SIZE)
    body, mimetype = {
        "csv": (lambda d: export.csv_chunks(d, raw_formulas=raw), "text/csv"),
        "json": (json_array, "application/json"),
        "jsonl": (export.jsonl_lines, "application/x-ndjson"),
        "xlsx": (export.xlsx_chunks, export.XLSX_MIMETYPE),
    }[fmt]
    return Response(stream_with_context(body(docs)), mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename={name}.{fmt}"})
