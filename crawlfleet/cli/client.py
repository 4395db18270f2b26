"""Client verbs (filled in by the API work)."""


def register(main):
    pass
