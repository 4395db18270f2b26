"""Admin pages: users (create, change role, reset password, delete) and API
tokens (create — shown once — and revoke). Admin role only."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crawlfleet import tokens, users
from crawlfleet.errors import CrawlfleetError
from web import auth, services

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(auth.login_required_for_blueprint)


@bp.before_request
def admins_only():
    if g.get("user") is not None and not auth.can("admin"):
        abort(403, _("only admins manage users and tokens"))


def done(message, endpoint):
    flash(message, "ok")
    return redirect(url_for(endpoint))


@bp.get("/users")
def users_page(secret=None):
    """`secret` is shown in this response only: a password or token never goes
    into the (signed, not encrypted) session cookie as a flash message."""
    return render_template("users.html", users=users.list_users(services().store),
                           roles=tokens.ROLES, secret=secret)


@bp.post("/users")
def create_user():
    form = request.form
    name = form.get("username", "").strip()
    password = form.get("password") or users.new_password()
    try:
        users.create_user(services().store, name, password, form.get("role", "viewer"))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"))
    if not form.get("password"):
        return users_page(secret=(_("Password of %(name)s, shown only now", name=name), password))
    return done(_("User %(name)s created.", name=name), "admin.users_page")


@bp.post("/users/<name>/role")
def set_role(name):
    try:
        users.set_role(services().store, name, request.form.get("role", ""))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"))
    role = _(request.form.get("role", ""))  # a valid role, as set_role checked
    return done(_("%(name)s is now %(role)s.", name=name, role=role), "admin.users_page")


@bp.post("/users/<name>/password")
def reset_password(name):
    password = users.new_password()
    try:
        users.set_password(services().store, name, password)
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"))
    return users_page(secret=(_("New password of %(name)s, shown only now", name=name), password))


@bp.post("/users/<name>/delete")
def delete_user(name):
    if name == g.user["_id"]:
        flash(_("You cannot delete yourself."), "error")
        return redirect(url_for("admin.users_page"))
    try:
        users.delete_user(services().store, name)
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"))
    return done(_("User %(name)s deleted.", name=name), "admin.users_page")


@bp.get("/tokens")
def tokens_page(secret=None):
    docs = list(services().store.tokens.find().sort("created_at", -1))
    return render_template("tokens.html", tokens=docs, roles=tokens.ROLES, secret=secret)


@bp.post("/tokens")
def create_token():
    name = request.form.get("name", "").strip()[:100]
    if not name:
        flash(_("Give the token a name, e.g. the program that will use it."), "error")
        return redirect(url_for("admin.tokens_page"))
    try:
        token = tokens.create_token(services().store, name, request.form.get("role", "viewer"))
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.tokens_page"))
    shown = _("Token %(name)s: copy it now, it is not shown again", name=name)
    return tokens_page(secret=(shown, token))


@bp.post("/tokens/<token_id>/revoke")
def revoke_token(token_id):
    if tokens.revoke_token(services().store, token_id):
        return done(_("Token revoked."), "admin.tokens_page")
    flash(_("No such token."), "error")
    return redirect(url_for("admin.tokens_page"))
