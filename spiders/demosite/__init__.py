"""Offline demo bookshop site used by the bundled spiders and the tests.

Run it with ``python -m spiders.demosite --host 127.0.0.1 --port 8900`` or,
from Python, ``spiders.demosite.server.start_in_thread()``.
"""
