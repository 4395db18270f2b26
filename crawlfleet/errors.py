"""crawlfleet's exception tree: one base, one line each on when it is raised."""


class CrawlfleetError(Exception):
    """Base of every error crawlfleet raises on purpose."""

    status_code = 500


class ConfigError(CrawlfleetError):
    """A setting is missing, malformed or out of range."""


class NotFound(CrawlfleetError):
    """A spider, task, node or token that was asked for does not exist."""

    status_code = 404


class BadRequest(CrawlfleetError):
    """Input from a user (API body, CLI argument) is invalid."""

    status_code = 400


class Conflict(CrawlfleetError):
    """The request clashes with the current state (e.g. cancelling a finished task)."""

    status_code = 409


class ProjectError(CrawlfleetError):
    """A spider project cannot be read, listed or packaged."""

    status_code = 400


class Unauthorized(CrawlfleetError):
    """No valid credentials were given."""

    status_code = 401


class Forbidden(CrawlfleetError):
    """Valid credentials whose role may not do this (a viewer asking for a change)."""

    status_code = 403
