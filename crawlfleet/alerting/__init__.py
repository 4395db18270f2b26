"""Alert channels, rules and history kept in the store, configured by admins
(web/alerts_api.py, web/alerts_ui.py, `crawlfleet alerts`) and evaluated by
the master's alert pass (master/alerts.py, master/node_alerts.py).

- `channels`: where alerts go, as Apprise URLs, encrypted at rest;
- `rules`: which outcome of which spider or schedule (or node figure) goes to
  which channels;
- `history`: every alert sent, with its result;
- `delivery`: one notification through Apprise, failures as one line.
"""
