"""The UI's languages (Flask-Babel): English and Simplified Chinese.

The locale of a request is the signed-in user's stored choice (``locale`` on
the user document, set from the account page or the switch in the page
header), else the best match of the browser's Accept-Language, else English.
Catalogs live in web/translations/<locale>/LC_MESSAGES/messages.po, the folder
named as Babel names the locale (zh_CN is zh_Hans_CN: Flask-Babel looks the
catalog up under that name); the compiled .mo files are committed next to
them (README "Languages").
"""

from babel import Locale
from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import Babel, get_locale, refresh
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from crawlfleet import users
from web import services
from web.auth import safe_next

bp = Blueprint("i18n", __name__)

DEFAULT_LOCALE = "en"
# The locales the UI offers, each named in its own language (for the switch).
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
# Words the templates show from data (`_(t.status)`, `_(user.role)`, `_(t.trigger)`),
# listed here so that pybabel extracts them: task statuses, roles, triggers.
DATA_WORDS = (
    _l("pending"), _l("running"), _l("finished"), _l("error"), _l("cancelled"), _l("timeout"),
    _l("abnormal"), _l("cancelling"),
    _l("admin"), _l("operator"), _l("viewer"),
    _l("ui"), _l("api"), _l("schedule"), _l("scrapyd"), _l("retry"), _l("scale"), _l("resume"),
    # alert events and node figures (alerts.html), subjects of sent alerts
    _l("zero items"), _l("cpu"), _l("memory"), _l("task"), _l("node"), _l("spider"),
    # node modes, version changes, schedule overlap policies, wizard templates (master/wizard.py)
    _l("enabled"), _l("draining"), _l("drained"), _l("disabled"),
    _l("added"), _l("removed"), _l("changed"), _l("skip"), _l("queue"), _l("allow"),
    _l("Scrapy project: one spider listing the demo bookshop"),
    _l("Plain Python script (no Scrapy): one spider listing the demo bookshop"),
)


def N_(text: str) -> str:
    """Marks a string for extraction (pybabel -k N_) without translating it here."""
    return text


# What static/*.js writes into pages: base.html hands their translations to
# the scripts (body's data-i18n), which fall back to the English text.
JS_TEXTS = (
    N_("Sure?"), N_("%(num)s selected"), N_("Select tasks to act on several at once."),
    N_("%(shown)s of %(total)s lines"), N_("%(total)s lines"), N_("live"), N_("complete"),
    N_("reconnecting…"), N_("Cancelling…"), N_("waiting"),
    N_("%(s)s s"), N_("%(m)s min %(s)s s"), N_("%(h)s h %(m)s min"),
    N_("Tick the columns to show; ‹ › move a column. Kept in this browser for this collection."),
    N_("Reset"), N_("Columns"), N_("Move %(col)s left"), N_("Move %(col)s right"),
    N_("tasks"), N_("failed"), N_("items"),
    N_("pending"), N_("running"), N_("finished"), N_("error"), N_("cancelled"),
    N_("timeout"), N_("abnormal"), N_("cancelling"),
    # the projects page's upload (app.js)
    N_("Uploading %(name)s (%(size)s kB)…"),
    N_("Deployed %(project)s version %(label)s with spiders %(spiders)s."),
    N_("Already deployed: %(project)s version %(label)s with spiders %(spiders)s."),
    N_("Upload failed: %(error)s"), N_("traceback"),
    N_("Inspecting %(project)s… (listing its spiders in its own environment)"),
    # the project editor (editor.js)
    N_("Selected: %(path)s"), N_("A binary file: it is kept as it is (rename or delete it from the tree)."),
    N_("Too large to edit here (over 1 MiB)."), N_("New file"), N_("New folder"),
    N_("Not a valid path: %(path)s"), N_("%(path)s exists already."),
    N_("%(path)s exists: replace it with the uploaded file?"), N_("Rename %(path)s"),
    N_("Delete %(path)s?"), N_("Delete %(path)s/ and the %(num)s file(s) in it?"),
    N_("Choose a file"), N_("Deleted."), N_("Not saved: %(error)s"), N_("the inspection failed"),
    N_("Unchanged: these files are exactly those of version %(label)s."),
    N_("New version, now current."), N_("Spiders: %(spiders)s."), N_("none"),
    N_("Message: %(message)s"), N_("added"), N_("removed"), N_("changed"),
    N_("%(num)s change(s):"),
)


def browser_locale() -> str:
    """The best of LANGUAGES for the request's Accept-Language (any zh-* is zh_CN)."""
    for tag, _quality in request.accept_languages:
        tag = tag.replace("-", "_").lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag == "en" or tag.startswith("en_"):
            return "en"
    return DEFAULT_LOCALE


def select_locale() -> str:
    user = g.get("user")
    chosen = user.get("locale") if user else None
    return chosen if chosen in LANGUAGES else browser_locale()


def page_locale() -> dict:
    """For every template: the request's locale and the offered languages."""
    # Babel's name of zh_CN is zh_Hans_CN (its catalog's folder): give the page
    # the code the switch offers
    chosen = get_locale()
    locale = next((code for code in LANGUAGES if Locale.parse(code) == chosen), DEFAULT_LOCALE)
    js_texts = {} if locale == DEFAULT_LOCALE else {text: _(text) for text in JS_TEXTS}
    return {"current_locale": locale, "html_lang": locale.replace("_", "-"),
            "languages": LANGUAGES, "js_texts": js_texts}


@bp.post("/account/language")
def set_language():
    """Store the signed-in user's language and go back to the page they were on."""
    if g.get("user") is None:
        return redirect(url_for("auth.login"))
    locale = request.form.get("locale", "")
    if locale not in LANGUAGES:
        abort(400, _("unknown language %(locale)r", locale=locale[:20]))
    users.set_locale(services().store, g.user["_id"], locale)
    g.user["locale"] = locale
    refresh()  # the locale worked out earlier in this request was the old one
    flash(_("Language changed."), "ok")
    return redirect(safe_next(request.form.get("next")))


def init_app(app) -> None:
    Babel(app, locale_selector=select_locale, default_locale=DEFAULT_LOCALE)
    app.context_processor(page_locale)
    app.register_blueprint(bp)
