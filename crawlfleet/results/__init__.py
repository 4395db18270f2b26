"""What happens to scraped items once a spider hands them over.

- `writer`: the one batch writer (fencing, dedup upsert, counts);
- `dedup`: per-spider deduplication by key and its unique index;
- `attempts`: a crawl's results hold its final attempt's items once;
- `sql`: a spider's table in PostgreSQL or MySQL/MariaDB;
- `delivery`: the node copies a finished attempt's items to its data sources.
"""

from crawlfleet.results.writer import Fenced, TaskWriter, WriteCounts, add_counts, write_batch

__all__ = ["Fenced", "TaskWriter", "WriteCounts", "add_counts", "write_batch"]
