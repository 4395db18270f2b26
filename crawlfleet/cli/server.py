"""Process verbs (filled in by the process work)."""


def register(main):
    pass
