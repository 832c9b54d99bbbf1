"""Typed settings, read from ``DATAGROVE_*`` environment variables and overridden by CLI flags.

Every setting has a default and a one-line help; ``docs/settings.md`` lists them all and a test
fails when one is missing there. Nothing reads the environment at import time: call ``load()``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from datagrove.tables.parquet_layout import DEFAULT_CODEC, Codec

_DUCKDB_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*(B|bytes|[KMGT]i?B)\s*", re.IGNORECASE)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATAGROVE_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8000, description="Port the HTTP server listens on.")
    data_dir: Path = Field(
        Path("./datagrove-data"), description="Directory for the catalog, tables and staging."
    )
    catalog_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata catalog; default: SQLite file catalog.db in the data "
        "directory. Use postgresql+psycopg://... for multi-node deployments.",
    )
    signing_key: str | None = Field(
        None,
        description="Secret for signing OAuth access tokens; default: generated once, kept in the catalog.",
    )
    token_lifetime_seconds: int = Field(3600, description="Lifetime of OAuth access tokens.")
    customer: str = Field("datagrove", description="Instance name reported in token responses as 'customer'.")
    bootstrap_client_id: str | None = Field(
        None, description="Create an admin OAuth client with this id on start (needs the secret too)."
    )
    bootstrap_client_secret: str | None = Field(None, description="Secret of the bootstrap OAuth client.")
    bootstrap_token: str | None = Field(
        None, description="Create this developer token for the admin on start."
    )
    query_timeout_seconds: float = Field(
        60.0, description="Longest a SQL query may run before it is stopped."
    )
    query_max_rows: int = Field(1_000_000, description="Most rows a SQL query may return.")
    query_threads: int = Field(2, description="DuckDB threads per query.")
    query_memory_limit: str = Field("4GB", description="DuckDB memory limit per query.")
    query_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        description="Bytes of a query's answer held before the response starts; an error within them is still a clean error response.",
    )
    ingest_threads: int = Field(
        0,
        description="Threads converting one stream part to Parquet; 0 = cores / ingest_concurrency. "
        "A single-file import (PUT /v1/datasets/{id}/data) always uses every core.",
    )
    ingest_concurrency: int = Field(
        0,
        description="CSV uploads converted to Parquet at once (others wait, already on disk); 0 = cores.",
    )
    parquet_codec: Codec = Field(
        DEFAULT_CODEC,
        description="Compression of the Parquet data files every writer makes (imports, stream parts, "
        "connector runs, folds, rewrites): snappy, zstd, lz4 or uncompressed. Files already written keep "
        "theirs; all read alike.",
    )
    max_upload_bytes: int = Field(
        16 * 1024**3, description="Largest CSV body (after decompression) accepted by a data import."
    )
    execution_idle_timeout_seconds: float = Field(
        24 * 3600,
        description="A stream execution idle for longer than this is aborted and its staging removed.",
    )
    commit_resume_after_seconds: float = Field(
        300, description="A commit left unfinished (its process died) this long is finished by the reaper."
    )
    reaper_interval_seconds: float = Field(60, description="How often idle executions are looked for.")
    max_json_bytes: int = Field(1024**2, description="Largest JSON request body accepted.")
    append_fold_rows: int = Field(
        10_000,
        description="Fold a dataset's buffered one-row appends into its table once this many rows are buffered.",
    )
    append_fold_bytes: int = Field(
        32 * 1024**2, description="Fold them once their CSV text is this many bytes."
    )
    append_fold_seconds: float = Field(
        300, description="Fold them once the oldest buffered row is this many seconds old."
    )
    append_fold_interval_seconds: float = Field(
        1.0, description="How often the buffers of one-row appends are checked for a fold."
    )
    commit_claim_seconds: float = Field(
        60,
        description="How long a claim to commit to a dataset's table lasts (commits to one dataset take "
        "turns across nodes); the claim of a process that died is taken over once it runs out.",
    )
    secret_key: str | None = Field(
        None,
        description="Key (base64 of 32 bytes) sealing account credentials and connector secrets; default: "
        "the file secret.key in the data directory, created 0600 on first start. Every node needs the same.",
    )
    connector_runs: int = Field(2, description="Connector runs one server process executes at once.")
    connector_batch_rows: int = Field(
        65_536, description="Rows a connector reads per batch (a run's memory is bounded by it)."
    )
    connector_file_rows: int = Field(
        2_000_000, description="Rows per Parquet file a connector run writes before starting the next."
    )
    connector_allowed_hosts: str = Field(
        "",
        description="Comma-separated hosts, addresses or CIDR ranges connectors may reach although they "
        "are private, loopback or link-local (e.g. 127.0.0.1,10.0.0.0/8); public addresses are always allowed.",
    )
    connector_local_dirs: str = Field(
        "", description="Comma-separated directories file connectors may read from (none by default)."
    )
    connector_retries: int = Field(
        3, description="Times a run that failed transiently (or whose server died) is retried."
    )
    connector_retry_backoff_seconds: float = Field(
        30, description="Wait before the first retry of a run; doubles with each further retry."
    )
    connector_heartbeat_seconds: float = Field(
        5,
        description="How often a running connector run records that it is alive; one silent for four "
        "times this is taken for dead, marked failed and retried.",
    )
    connector_sql_timeout_seconds: float = Field(
        3600,
        description="Longest a dataset-sql connector's query may run (queries over HTTP: query_timeout_seconds).",
    )
    connector_max_download_bytes: int = Field(
        10 * 1024**3,
        description="Largest file a file connector downloads from a URL (it is kept on local disk while read).",
    )
    scheduler_interval_seconds: float = Field(1.0, description="How often due schedules are looked for.")
    scheduler_clock_file: Path | None = Field(
        None,
        description="For tests and rehearsals: a file holding the ISO-8601 time the scheduler takes as "
        "now (the real clock when unset).",
    )
    maintenance_interval_seconds: float = Field(
        3600,
        description="How often each dataset's table is maintained in the background (expiry, orphan "
        "sweep, compaction; one node per dataset and interval); 0 = never (the CLI still can).",
    )
    retention_min_snapshots: int = Field(
        10,
        description="Snapshots (versions) of a table always kept, however old, the current one among them.",
    )
    retention_days: float = Field(
        7,
        description="Snapshots younger than this are always kept; an older one expires only when "
        "retention_min_snapshots newer ones remain.",
    )
    maintenance_grace_seconds: float = Field(
        6 * 3600,
        description="Files that expired snapshots leave are deleted only this long after the expiry, so "
        "a query or export that started on such a snapshot can finish; never less than the longest "
        "query (query_timeout_seconds, connector_sql_timeout_seconds) plus 5 minutes.",
    )
    orphan_min_age_seconds: float = Field(
        24 * 3600,
        description="Files in a table's directory that no snapshot references (a crash between placing "
        "them and the commit) are deleted once this old; never less than the grace period or a commit claim.",
    )
    compaction_target_bytes: int = Field(
        128 * 1024**2,
        description="Size of the data files compaction writes (and the measure of a small file: under half).",
    )
    compaction_min_small_files: int = Field(
        10, description="Compact a table once its current snapshot has more small files than this."
    )
    storage_url: str | None = Field(
        None,
        description="Where the tables' files live: unset = the data directory; s3://bucket/prefix = an "
        "S3-compatible object store (every node of a multi-node deployment needs the same).",
    )
    s3_endpoint: str | None = Field(
        None, description="S3 endpoint URL for a non-AWS store, e.g. http://minio:9000 (unset: AWS)."
    )
    s3_region: str | None = Field(None, description="S3 region, e.g. us-east-1.")
    s3_access_key_id: str | None = Field(
        None, description="S3 access key id (unset: the AWS SDK's usual sources, e.g. AWS_ACCESS_KEY_ID)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="S3 secret access key; never logged or shown."
    )
    s3_path_style: bool = Field(
        False, description="Address buckets as endpoint/bucket (MinIO, moto) instead of bucket.endpoint."
    )
    file_cache_dir: Path | None = Field(
        None,
        description="Local cache of data files read from object storage for queries; default: cache in "
        "the data directory.",
    )
    file_cache_bytes: int = Field(
        10 * 1024**3,
        description="Largest size of the file cache; least recently used files beyond it are removed.",
    )
    # --- the web interface: sign-in sessions and failed sign-in limits (src/datagrove/web) ---
    web_session_idle_seconds: int = Field(
        2 * 3600, description="A web session unused for this long is signed out."
    )
    web_session_max_seconds: int = Field(
        12 * 3600, description="A web session ends this long after sign-in, however much it is used."
    )
    sign_in_max_failures: int = Field(
        5, description="Failed web sign-ins allowed for one email within the window; more are refused."
    )
    sign_in_max_failures_per_address: int = Field(
        20,
        description="Failed web sign-ins allowed from one source address within the window; more are refused.",
    )
    sign_in_window_seconds: int = Field(
        15 * 60, description="The window in which failed web sign-ins are counted; they wait it out."
    )
    # Query sandbox reuse (issue 12: scan speed).
    query_sandbox_pool: int = Field(
        4,
        ge=0,
        description="Used query sandboxes (locked DuckDB databases) kept idle for later queries that "
        "would see exactly the same views, files and limits; each may hold up to query_memory_limit "
        "of cached data. 0: every query gets a new one.",
    )
    # API description (issue 13: openapi)
    api_docs: bool = Field(
        True,
        description="Serve the API description: the OpenAPI 3.1 document at /openapi.json and its "
        "reference page at /docs (no token needed; they hold no data). false: both answer 404.",
    )
    # Metrics, readiness and audit retention (issue 14: operations, docs/operations-metrics.md)
    metrics_allow: str = Field(
        "127.0.0.0/8,::1",
        description="Comma-separated addresses or CIDR ranges that may read /metrics without a token "
        "(the TCP peer's address); empty: none.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="A bearer token that lets any address read /metrics (Authorization: Bearer <token>); "
        "unset: only metrics_allow's addresses may.",
    )
    audit_retention_days: float = Field(
        365,
        ge=0,
        description="Activity log entries older than this are deleted in the background (with table "
        "maintenance, once per maintenance_interval_seconds, by one node); 0: kept forever.",
    )
    # --- operation limits (issue 14: docs/operations-limits.md) ---
    auth_max_failures_per_client: int = Field(
        10,
        ge=1,
        description="Failed /oauth/token requests allowed for one client id within the window; more "
        "are refused (429) without checking the secret.",
    )
    auth_max_failures_per_address: int = Field(
        50,
        ge=1,
        description="Failed API authentications (/oauth/token, unknown developer tokens) allowed from "
        "one source address within the window; more are refused (429).",
    )
    auth_failure_window_seconds: int = Field(
        300, ge=1, description="The window in which failed API authentications are counted."
    )
    query_slots_per_user: int = Field(
        4, ge=1, description="Queries one user may run at once in one server process; more are 429."
    )
    query_slots: int = Field(16, ge=1, description="Queries one server process runs at once; more are 429.")
    upload_slots_per_user: int = Field(
        8,
        ge=1,
        description="Uploads (stream parts, upload session parts, imports) one user may send at once to "
        "one server process; more are 429.",
    )
    upload_slots: int = Field(
        32, ge=1, description="Uploads one server process receives at once; more are 429."
    )
    limit_retry_after_seconds: int = Field(
        2, ge=1, description="Retry-After of a request refused for want of a query or upload slot."
    )
    query_spill_limit: str = Field(
        "10GB",
        description="Disk a query may spill to (DuckDB max_temp_directory_size) when it needs more than "
        "query_memory_limit, in its own directory under data_dir/query-spill; 0GB: never spill.",
    )

    @field_validator("query_spill_limit")
    @classmethod
    def _a_duckdb_size(cls, value: str) -> str:
        # Checked here: DuckDB would refuse it only at the first query, as an internal error.
        if not _DUCKDB_SIZE.fullmatch(value):
            raise ValueError(f"{value!r} is not a size such as 10GB, 512MB or 1.5GiB")
        return value.strip()

    # Graceful shutdown and a full disk (issue 14: ops resilience)
    shutdown_grace_seconds: float = Field(
        30,
        ge=0,
        description="On SIGTERM (or Ctrl-C) the server answers new requests 503 and waits up to this "
        "long for the uploads, commits and queries under way to finish, then exits.",
    )
    min_free_disk_bytes: int = Field(
        1024**3,
        ge=0,
        description="New uploads are refused (HTTP 507) while the data directory's disk has less free "
        "space than this, so the commits and folds under way still find room; 0 turns the floor off.",
    )

    # Cheap requests (issue 14: ops-cheap)
    catalog_pool_size: int = Field(
        20,
        ge=1,
        description="Catalog connections each engine keeps open for reuse (SQLite and PostgreSQL). "
        "Opening one costs more than a small read, so a pool smaller than the requests in flight "
        "makes every cheap request slow.",
    )
    catalog_pool_overflow: int = Field(
        20,
        ge=0,
        description="Further catalog connections opened under a burst and closed when returned; a "
        "request waits (up to 30 s) once catalog_pool_size + catalog_pool_overflow are in use.",
    )

    # Iceberg REST catalog (issue 15: other engines read the tables; docs/iceberg-rest.md).
    iceberg_rest: bool = Field(
        True,
        description="Serve the read-only Iceberg REST catalog under /iceberg (a client's uri is "
        "http://host:port/iceberg). false: every /iceberg route answers 404.",
    )
    iceberg_s3_role_arn: str | None = Field(
        None,
        description="S3 storage: the role the catalog assumes (STS AssumeRole) to vend each reader "
        "short-lived credentials limited, by a session policy, to reading the loaded table's prefix.",
    )
    iceberg_s3_sts_endpoint: str | None = Field(
        None, description="STS endpoint URL for a non-AWS store (unset: s3_endpoint, else AWS's)."
    )
    iceberg_s3_credentials_seconds: int = Field(
        900,
        ge=1,
        description="Lifetime of vended S3 credentials (AWS accepts 900 to the role's maximum session).",
    )
    iceberg_s3_vend_server_credentials: bool = Field(
        False,
        description="S3 storage without a role: hand readers the server's own S3 keys (they can then "
        "read and write everything the server can; only where every catalog reader is trusted). "
        "Unset and no role: readers get the endpoint and region only and bring their own credentials.",
    )

    # Distributed queries on a Ray cluster through Daft (issue 15: a distributed query path)
    distributed_ray_address: str | None = Field(
        None,
        description="Ray cluster that runs distributed queries (Daft): host:port of its head's GCS when "
        "this server runs on a node of the cluster, or ray://head:10001 (Ray Client). Unset: every "
        "query runs in the local DuckDB sandbox, and engine=distributed is refused.",
    )
    distributed_min_rows: int | None = Field(
        None,
        ge=0,
        description="With a Ray cluster: a query that names no engine runs on it when its dataset has "
        "more rows than this. Unset: only queries asking for engine=distributed run there.",
    )
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR.")

    @property
    def resolved_catalog_url(self) -> str:
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def resolved_ingest_concurrency(self) -> int:
        # Measured on 2 cores (bench/RESULTS.md): two one-thread conversions beat one two-thread
        # conversion by ~15% on parallel parts, and two two-thread ones overshoot the memory target.
        return self.ingest_concurrency or (os.cpu_count() or 2)

    @property
    def resolved_part_threads(self) -> int:
        return self.ingest_threads or max(1, (os.cpu_count() or 2) // self.resolved_ingest_concurrency)

    @property
    def import_threads(self) -> int:
        return os.cpu_count() or 2

    @property
    def resolved_maintenance_grace_seconds(self) -> float:
        # A read resolves its snapshot first and then reads its files for as long as it may run.
        longest_read = max(self.query_timeout_seconds, self.connector_sql_timeout_seconds)
        return max(self.maintenance_grace_seconds, longest_read + 300)

    @property
    def resolved_orphan_min_age_seconds(self) -> float:
        # Files placed by a commit wait for its Iceberg commit under the dataset's commit claim.
        return max(
            self.orphan_min_age_seconds,
            self.resolved_maintenance_grace_seconds,
            self.commit_claim_seconds + 300,
        )

    @property
    def warehouse_dir(self) -> Path:
        return (self.data_dir / "warehouse").resolve()

    @property
    def staging_dir(self) -> Path:
        return (self.data_dir / "staging").resolve()

    @property
    def query_spill_dir(self) -> Path:
        return (self.data_dir / "query-spill").resolve()

    @property
    def resolved_file_cache_dir(self) -> Path:
        return (self.file_cache_dir or self.data_dir / "cache").resolve()


def load(**overrides: Any) -> Settings:
    """Settings from the environment, with non-None ``overrides`` (CLI flags) taking precedence."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
