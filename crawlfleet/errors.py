"""crawlfleet's exception tree: one base, one line each on when it is raised."""


class CrawlfleetError(Exception):
    """Base of every error crawlfleet raises on purpose.

    A subclass names the HTTP status the API answers it with in its class line
    (``class NotFound(CrawlfleetError, status_code=404)``), so the tree below
    reads as a table: one error a line, its status, when it is raised.
    """

    status_code = 500

    def __init_subclass__(cls, status_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code


# One line each, as a table (hence the docstring on the class line).
class ConfigError(CrawlfleetError): """A setting is missing, malformed or out of range."""
class NotFound(CrawlfleetError, status_code=404): """A spider, task, node or token asked for does not exist."""
class BadRequest(CrawlfleetError, status_code=400): """Input from a user (API body, CLI argument) is invalid."""
class Conflict(CrawlfleetError, status_code=409): """The request clashes with the current state (e.g. cancelling a finished task)."""
class ProjectError(CrawlfleetError, status_code=400): """A spider project cannot be read, listed or packaged."""
class Unauthorized(CrawlfleetError, status_code=401): """No valid credentials were given."""
class Forbidden(CrawlfleetError, status_code=403): """Valid credentials whose role may not do this (a viewer asking for a change)."""
