"""Who may use the Scrapyd endpoints: HTTP basic auth, as Scrapyd asks for it.

The password is a crawlfleet API token (the user name is free), or a web
user's name and password; ``Authorization: Bearer <token>`` works too, and
on the main port a signed-in web UI session. Without valid credentials the
answer is Scrapyd's: 401, ``WWW-Authenticate: basic realm="Scrapyd"`` and
the body ``Unauthorized``. Reading needs any role; deploying, scheduling,
cancelling and deleting need operator or admin (403 otherwise).
"""

from flask import g, request

from crawlfleet import users
from crawlfleet.tokens import verify_token
from web import services
from web.scrapyd.protocol import Forbidden, Unauthorized

WRITE_ROLES = ("operator", "admin")


def role_of_request() -> str | None:
    store = services().store
    auth = request.authorization
    doc = None
    if auth is not None and auth.type == "bearer":
        doc = verify_token(store, auth.token)
    elif auth is not None and auth.type == "basic":
        doc = verify_token(store, auth.password)
        if doc is None and auth.username:
            doc = users.authenticate(store, auth.username, auth.password)
    elif g.get("user"):  # the web UI's session (web.auth checked its CSRF token)
        return g.user["role"]
    return doc and doc.get("role")


def authenticate(writes: bool) -> None:
    """Raise Unauthorized or Forbidden unless the request may go on."""
    role = role_of_request()
    if not role:
        raise Unauthorized("Unauthorized")
    if writes and request.method == "POST" and role not in WRITE_ROLES:
        raise Forbidden(f"this needs the operator or admin role; these credentials are {role}")
