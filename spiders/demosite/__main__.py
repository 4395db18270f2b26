"""Serve the demo site: ``python -m spiders.demosite --host 127.0.0.1 --port 8900``.

Port 0 picks a free port. Prints exactly one line
``demo site listening on http://HOST:PORT`` once listening; exits cleanly
(status 0) on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

if __package__:
    from .server import make_server, server_url
else:  # run as a path: python spiders/demosite  (works from any directory)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from spiders.demosite.server import make_server, server_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spiders.demosite", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port to bind, 0 = any free port (default 8900)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds every answer is held back (a slow site; default 0)")
    parser.add_argument("--request-log", metavar="FILE",
                        help="append the path of every GET to FILE, one a line")
    args = parser.parse_args(argv)

    try:
        server = make_server(args.host, args.port, verbose=args.verbose, delay=args.delay,
                             request_log=args.request_log)
    except OSError as exc:
        print(f"demo site: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1

    stop = threading.Event()

    def _on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"demo site listening on {server_url(server, args.host)}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
