"""Serialising store documents for HTTP: JSON that never fails on BSON types
or non-finite floats, and streaming exports (JSON lines, CSV, plain-text
logs) that read a cursor batch by batch, so a million items cost one batch
of memory.

CSV cells are written as scraped: a value starting with ``=`` is not
escaped against spreadsheet formula injection, because the export is data
for programs first; open untrusted exports in a spreadsheet with care.
"""

import base64
import csv
import datetime
import decimal
import io
import itertools
import json
import math
import uuid

from bson import ObjectId
from bson.binary import Binary
from bson.decimal128 import Decimal128

BATCH_SIZE = 500       # documents fetched per round trip while streaming
AFTER_SCAN = 10_000    # a task's items read to find a page cursor's place
CSV_SAMPLE = 1000      # items whose keys make the CSV columns
CSV_FLUSH_ROWS = 200   # rows per chunk handed to the HTTP server


def json_default(value):
    """What `json.dumps` cannot encode by itself, as plain JSON values."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, Binary)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _finite(value):
    """`value` with NaN and ±Infinity (not valid JSON) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(obj, **kwargs):
    """JSON text of `obj`; the slow path only runs when a float is not finite."""
    kwargs.setdefault("default", json_default)
    kwargs["allow_nan"] = False
    try:
        return json.dumps(obj, **kwargs)
    except ValueError:
        # `default` may itself return a non-finite float, so convert first.
        return json.dumps(_finite(json.loads(json.dumps(obj, default=kwargs["default"]))),
                          **kwargs)


# -- results -------------------------------------------------------------------

def items_cursor(collection, task_id, after=None, limit=0):
    """A task's items in `_id` order, optionally after a keyset cursor.

    After a cursor, the task's first AFTER_SCAN items are read through the
    `_tid` index and the cursor's place is found here: nx-27017 scans the
    whole collection for any comparison with an ObjectId (10 s a page at 1M
    rows, whatever the task's size). Past them, the `_id` range is the query.
    """
    # a list: the items of several tasks (the workers of one crawl)
    query = {"_tid": {"$in": task_id} if isinstance(task_id, list) else task_id}
    if after is not None:
        rows, read = [], 0
        head = collection.find(query).sort("_id", 1).batch_size(BATCH_SIZE).limit(AFTER_SCAN)
        with head:
            for doc in head:
                read += 1
                if _past(doc["_id"], after):
                    rows.append(doc)
                    if len(rows) == limit:
                        return rows
        if read < AFTER_SCAN:
            return rows
        query["_id"] = {"$gt": after}
    return collection.find(query).sort("_id", 1).batch_size(BATCH_SIZE).limit(limit)


def _past(value, after):
    """`value > after` as `$gt` means it: only between values of one type."""
    try:
        return type(value) is type(after) and value > after
    except TypeError:
        return False


def jsonl_lines(docs):
    for doc in docs:
        yield dumps(doc, ensure_ascii=False) + "\n"


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return dumps(value, ensure_ascii=False)
    encoded = json_default(value)
    return encoded if isinstance(encoded, str) else dumps(encoded, ensure_ascii=False)


def csv_columns(docs):
    """Keys of `docs` in order of first appearance, without `_id`."""
    columns = {}
    for doc in docs:
        for key in doc:
            if key != "_id":
                columns.setdefault(key, None)
    return list(columns)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text):
    """OWASP's rule against CSV injection: a cell a spreadsheet would read as a
    formula gets a leading apostrophe, so it is shown as the text it is."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def raw_formulas_asked(args):
    """``formulas=raw`` in a query: the export keeps formula-like cells as they are."""
    value = args.get("formulas", "safe")
    if value not in ("safe", "raw"):
        from crawlfleet.errors import BadRequest

        raise BadRequest("formulas must be safe (the default) or raw")
    return value == "raw"


def csv_chunks(docs, sample=CSV_SAMPLE, raw_formulas=False):
    """CSV text in chunks; columns are the keys of the first `sample` items
    (later items' other keys are left out). Text cells that start like a
    formula are neutralised unless `raw_formulas`."""
    docs = iter(docs)
    head = list(itertools.islice(docs, sample))
    columns = csv_columns(head)
    if not columns:
        return
    safe = (lambda text: text) if raw_formulas else neutralise
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe(str(c)) for c in columns])
    for n, doc in enumerate(itertools.chain(head, docs), 1):
        # text only: a number such as -3 is no formula, and stays a number
        writer.writerow([safe(v) if isinstance(v, str) else csv_cell(v)
                         for v in (doc.get(c) for c in columns)])
        if n % CSV_FLUSH_ROWS == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
XLSX_CHUNK = 64 * 1024


def xlsx_cell(sheet, value):
    """A cell holding `value` as data: numbers stay numbers, text is never a
    formula (openpyxl would make ``=...`` one), characters Excel refuses go."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, bool) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                   and (not isinstance(value, float) or math.isfinite(value))
                                   and abs(value) < 1e15):
        return WriteOnlyCell(sheet, value)
    text = ILLEGAL_CHARACTERS_RE.sub("", csv_cell(value))[:32767]
    cell = WriteOnlyCell(sheet, text)
    cell.data_type = "s"
    return cell


def xlsx_chunks(docs, sample=CSV_SAMPLE):
    """An Excel workbook of `docs` (columns as in CSV), written by openpyxl's
    write-only mode to a temporary file, then streamed and removed."""
    import tempfile

    from openpyxl import Workbook

    docs = iter(docs)
    head = list(itertools.islice(docs, sample))
    columns = csv_columns(head)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    sheet.append(columns)
    for doc in itertools.islice(itertools.chain(head, docs), XLSX_MAX_ROWS):
        sheet.append([xlsx_cell(sheet, doc.get(c)) for c in columns])
    with tempfile.TemporaryFile(suffix=".xlsx") as out:
        book.save(out)
        out.seek(0)
        while chunk := out.read(XLSX_CHUNK):
            yield chunk


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- logs ----------------------------------------------------------------------

def log_chunks(task_logs, task_id, offset=0):
    """Stored log chunks of a task from line `offset` on, in order."""
    return (task_logs.find({"task_id": task_id, "end": {"$gt": offset}})
            .sort("seq", 1).batch_size(50))


def log_page(task_logs, task_id, offset, limit):
    """(lines, next_offset): up to `limit` lines from line `offset`.

    `next_offset` is one past the last line returned, so a gap in the stored
    chunks (lines the node dropped) is skipped rather than re-read forever.
    """
    lines, next_offset = [], offset
    for chunk in log_chunks(task_logs, task_id, offset):
        start = chunk.get("start", 0)
        skip = max(0, offset - start)
        part = chunk.get("lines", [])[skip:skip + limit - len(lines)]
        lines.extend(part)
        next_offset = max(offset, start) + len(part)
        if len(lines) >= limit:
            break
    return lines, next_offset


def log_text(task_logs, task_id):
    """The whole log as text, one chunk per stored batch."""
    for chunk in log_chunks(task_logs, task_id):
        lines = chunk.get("lines", [])
        if lines:
            yield "".join(line + "\n" for line in lines)
