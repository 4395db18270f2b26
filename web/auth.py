"""Sessions of the web UI: login and logout, the signed-in user, roles, CSRF
and the security headers of every response.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure when
the request came over https), holding the id of a session kept in the store
(`crawlfleet.users`: signing out, a password or role change and deleting the
user end it on the server, so an old cookie is worth nothing) and a
per-session CSRF token. Every state-changing request that relies on the
cookie must carry that token, in the form field ``csrf_token`` or the header
``X-CSRF-Token``.

A request that carries an ``Authorization`` header is token-authenticated
and its cookie is ignored altogether (`web.credentials`): it can never act
on the session without the CSRF token. Password tries go through
`web.guard`, which locks out an account or address after repeated failures.
"""

import functools
import hmac
import secrets
from urllib.parse import urlsplit

from flask import (Blueprint, abort, flash, g, redirect, render_template, request, session,
                   url_for)
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _

from crawlfleet import users
from crawlfleet.errors import CrawlfleetError
from web import guard, services

bp = Blueprint("auth", __name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
SESSION_HOURS = 12
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session, marked Secure whenever the request is https."""

    def get_cookie_secure(self, app):
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def init_app(app):
    import datetime

    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="crawlfleet_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=SESSION_HOURS),
    )
    app.before_request(load_user)
    app.before_request(check_csrf)
    app.after_request(security_headers)
    app.jinja_env.globals.update(csrf_token=csrf_token, can=can, CSRF_FIELD=CSRF_FIELD)
    app.register_blueprint(bp)


# -- the signed-in user ----------------------------------------------------------

def load_user():
    g.user = None
    if request.endpoint == "static" or "sid" not in session:
        return
    if "Authorization" in request.headers:
        return  # token-authenticated: the cookie does not count (see the docstring)
    user = users.session_user(services().store, session.get("sid"))
    if user is None:
        session.clear()
        return
    g.user = user


def can(role):
    """Whether the signed-in user has `role` or a stronger one."""
    user = g.get("user")
    return bool(user) and ROLE_RANK.get(user["role"], -1) >= ROLE_RANK[role]


def login_required_for_blueprint():
    """A blueprint's before_request: anonymous users go to the login page."""
    if g.get("user") is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require(role):
    """Route decorator: 403 unless the user has `role` (or stronger)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if g.get("user") is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not can(role):
                abort(403, _("this needs the %(role)s role; you are %(yours)s", role=_(role),
                           yours=_(g.user["role"])))
            return view(*args, **kwargs)

        return wrapped

    return decorator


# -- CSRF ------------------------------------------------------------------------

def csrf_token():
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf():
    if request.method in SAFE_METHODS or request.endpoint == "static":
        return
    if "Authorization" in request.headers:
        return  # token-authenticated: load_user ignored the cookie, g.user is None
    if g.get("user") is None and request.endpoint != "auth.login":
        return  # no session: pages send to the login page, the APIs answer 401
    expected = session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    if not expected or not hmac.compare_digest(str(given).encode(), expected.encode()):
        abort(403, _("missing or wrong CSRF token; reload the page and try again"))


def security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- login and logout ------------------------------------------------------------

def safe_next(target):
    """Only a path on this site: never an absolute URL somewhere else."""
    if not target or not isinstance(target, str):
        return url_for("ui.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return url_for("ui.dashboard")
    return target


def end_current_session():
    """End the session on the server (its cookie is worth nothing after) and clear it."""
    users.end_session(services().store, session.get("sid"))
    session.clear()


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if g.get("user"):
            return redirect(safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))
    name = request.form.get("username", "").strip()
    try:
        user = guard.check_password(name, request.form.get("password", ""))
    except guard.TooManyGuesses as exc:
        flash(f"{str(exc).capitalize()}.", "error")
        page = render_template("login.html", next=request.form.get("next", ""), username=name)
        return page, 429, {"Retry-After": str(exc.retry_after)}
    if user is None:
        flash(_("Wrong user name or password."), "error")
        return render_template("login.html", next=request.form.get("next", ""),
                               username=name), 401
    end_current_session()
    session.permanent = True
    session["sid"] = users.open_session(services().store, user["_id"], SESSION_HOURS * 3600)
    csrf_token()
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    end_current_session()
    flash(_("Signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
def account():
    if g.get("user") is None:
        return redirect(url_for("auth.login", next=request.path))
    if request.method == "POST":
        store = services().store
        current = request.form.get("current", "")
        new, again = request.form.get("password", ""), request.form.get("again", "")
        try:
            if guard.check_password(g.user["_id"], current) is None:
                raise CrawlfleetError(_("the current password is wrong"))
            if new != again:
                raise CrawlfleetError(_("the two new passwords differ"))
            users.set_password(store, g.user["_id"], new, keep_session=session.get("sid"))
        except CrawlfleetError as exc:
            flash(str(exc), "error")
            return render_template("account.html"), 400
        flash(_("Password changed."), "ok")
        return redirect(url_for("auth.account"))
    return render_template("account.html")
