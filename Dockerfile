# One image for every crawlfleet role; the command picks it (see docker-compose.yml):
#   docker build -t crawlfleet .
#   docker run --rm crawlfleet master | node | web --bind 0.0.0.0:8080 | health web | …
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# nodejs: spiders written for Node.js (the bundled node_catalogue) run on nodes;
# git: projects deployed from git repositories (`crawlfleet deploy --git`);
# bubblewrap: the spider sandbox (README "Security model").
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs git bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY crawlfleet ./crawlfleet
COPY master ./master
COPY node ./node
COPY web ./web
COPY spiders ./spiders
RUN pip install . && rm -rf /src

# master and web run as `crawlfleet`, never root. A node runs as root
# (docker-compose.yml: `user: "0"`) only to start each spider in the sandbox
# as `crawlfleet-spider`, which owns nothing and cannot read /data.
# HOME holds only caches here (node: project versions and virtual
# environments); the ledger, logs, results and project zips live in MongoDB.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin crawlfleet \
    && useradd --system --no-create-home --home-dir /nonexistent --uid 10002 \
       --shell /usr/sbin/nologin crawlfleet-spider \
    && mkdir -p /data \
    && chown crawlfleet:crawlfleet /data \
    && chmod 0700 /data
USER crawlfleet
WORKDIR /data
ENV CRAWLFLEET_HOME=/data

EXPOSE 8080 6800
ENTRYPOINT ["crawlfleet"]
CMD ["--help"]
