"""A multipart upload read as it arrives: each file part streamed to a private
temporary file, the body refused with 413 as soon as it passes its limit.
Shared by the project API and the Scrapyd endpoints."""

import tempfile

from flask import request
from werkzeug.formparser import FormDataParser

from crawlfleet.errors import BadRequest

MAX_FIELD_BYTES = 512 * 1024  # a text field (werkzeug also bounds its read buffer by it)
MAX_PARTS = 16


def read_multipart(folder, limit):
    """(form, files) of a multipart body, each file part streamed to a
    temporary file in `folder`; 413 past `limit` bytes, checked while reading."""
    request.max_content_length = limit
    if request.mimetype != "multipart/form-data":
        raise BadRequest("send the upload as multipart/form-data")

    def stream_factory(total_content_length, content_type, filename, content_length=None):
        return tempfile.TemporaryFile(dir=folder)

    parser = FormDataParser(stream_factory=stream_factory, max_form_memory_size=MAX_FIELD_BYTES,
                            max_content_length=limit, max_form_parts=MAX_PARTS, silent=False)
    try:
        _, form, files = parser.parse(request.stream, request.mimetype, request.content_length,
                                      request.mimetype_params)
    except ValueError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    return form, files
