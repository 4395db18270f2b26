"""The web UI's own pages, one blueprint (``ui``) whose routes live in a
module per page: `web.dashboard`, `web.nodes_ui`, `web.spiders_ui`,
`web.tasks_ui` and the live log stream `web.logstream`. Server-rendered with
Jinja (autoescaped); the small JavaScript in static/app.js only refreshes and
streams.

Every page needs a signed-in user; running and cancelling need the operator
role. Lists page by keyset (`web.taskpager`) and never count a large
collection.
"""

from flask import Blueprint, abort
from flask_babel import gettext as _

from web import auth

bp = Blueprint("ui", __name__)
bp.before_request(auth.login_required_for_blueprint)


def parse_pairs(text, what):
    """NAME=VALUE lines of a textarea as a dict."""
    from crawlfleet.errors import CrawlfleetError

    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CrawlfleetError(f"{what}: expected NAME=VALUE, got {line!r}")
        out[key.strip()] = value.strip()
    return out


def one_or_404(collection, _id, what):
    """The document `_id` of a store collection, or the page's 404 naming it."""
    doc = collection.find_one({"_id": _id})
    if doc is None:
        abort(404, _("unknown %(what)s %(id)r", what=_(what), id=_id))
    return doc


# the pages register their routes on `bp` as they are imported
from web import dashboard, logstream, nodes_ui, spiders_ui, tasks_ui  # noqa: E402,F401,I001
