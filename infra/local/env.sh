# shellcheck shell=bash
# Ports and settings of the local infrastructure, sourced by every infra/local/bin/* script.
# Each variable keeps a value already set in the environment, so a test run can move a server
# (e.g. `REDIS_PORT=6380 infra/local/bin/redis run`) without editing this file.

# The repository root, found from this file so the scripts work from any working directory.
EMPORIUM_ROOT="${EMPORIUM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# Data and logs of every server (git-ignored); one sub-folder per server.
EMPORIUM_VAR="${EMPORIUM_VAR:-$EMPORIUM_ROOT/var}"
# Downloads and builds, kept outside the work tree so a fresh clone reuses them.
EMPORIUM_CACHE="${EMPORIUM_CACHE:-$HOME/.cache/emporium}"

RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"
RABBITMQ_MANAGEMENT_PORT="${RABBITMQ_MANAGEMENT_PORT:-15672}"
CASSANDRA_PORT="${CASSANDRA_PORT:-9042}"
MONGO_PORT="${MONGO_PORT:-27017}"
OPENSEARCH_PORT="${OPENSEARCH_PORT:-9200}"
REDIS_PORT="${REDIS_PORT:-6379}"
VERSITYGW_PORT="${VERSITYGW_PORT:-7070}"

export EMPORIUM_ROOT EMPORIUM_VAR EMPORIUM_CACHE RABBITMQ_PORT RABBITMQ_MANAGEMENT_PORT \
    CASSANDRA_PORT MONGO_PORT OPENSEARCH_PORT REDIS_PORT VERSITYGW_PORT

# Cassandra and OpenSearch also listen on an internal port each (node-to-node traffic, unused by
# a single node but always bound, to 127.0.0.1), and get a bounded heap (the maximum) so memory
# stays predictable.
CASSANDRA_STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
CASSANDRA_HEAP="${CASSANDRA_HEAP:-1g}"
OPENSEARCH_TRANSPORT_PORT="${OPENSEARCH_TRANSPORT_PORT:-9300}"
OPENSEARCH_HEAP="${OPENSEARCH_HEAP:-512m}"
export CASSANDRA_STORAGE_PORT CASSANDRA_HEAP OPENSEARCH_TRANSPORT_PORT OPENSEARCH_HEAP

# The S3 region versitygw signs for (any name; clients must sign with the same one), and the
# root keys it uses under EMPORIUM_ENV=development only: infra/local/bin/versitygw refuses to
# start with them otherwise (set VERSITYGW_ACCESS_KEY / VERSITYGW_SECRET_KEY from a secret).
VERSITYGW_REGION="${VERSITYGW_REGION:-us-east-1}"
VERSITYGW_DEV_ACCESS_KEY=emporium-dev
VERSITYGW_DEV_SECRET_KEY=emporium-dev-secret-not-for-production
export VERSITYGW_REGION VERSITYGW_DEV_ACCESS_KEY VERSITYGW_DEV_SECRET_KEY
