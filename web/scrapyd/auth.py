"""Who may use the Scrapyd endpoints: HTTP basic auth, as Scrapyd asks for it.

The password is a crawlfleet API token (the user name is free), or a web
user's name and password; ``Authorization: Bearer <token>`` works too, and
on the main port a signed-in web UI session. Without valid credentials the
answer is Scrapyd's: 401, ``WWW-Authenticate: basic realm="Scrapyd"`` and
the body ``Unauthorized``. Reading needs any role; deploying, scheduling,
cancelling and deleting need operator or admin (403 otherwise).
"""

from flask import request

from crawlfleet.errors import Forbidden, Unauthorized
from web import credentials


def authenticate(writes: bool) -> None:
    """Raise Unauthorized or Forbidden unless the request may go on (a web
    user's password through basic auth is a password guess: `web.guard`
    limits it, like the login form)."""
    principal = credentials.identify(allow_basic=True)
    if principal is None:
        raise Unauthorized("Unauthorized")
    if writes and request.method == "POST" and not principal.may_write:
        raise Forbidden("this needs the operator or admin role; these credentials are "
                        f"{principal.role}")
