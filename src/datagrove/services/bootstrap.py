"""First-start setup: an admin and credentials, from settings or generated once.

With ``DATAGROVE_BOOTSTRAP_CLIENT_ID``/``_SECRET`` and/or ``DATAGROVE_BOOTSTRAP_TOKEN`` the admin gets
exactly those credentials (idempotent: existing ones are left alone). Without them, the very first
start creates an admin with a new OAuth client and developer token and writes them to
``admin-credentials.json`` in the data directory, readable only by its owner.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from datagrove.catalog.repository import Catalog
from datagrove.services.auth import Authenticator, digest, ensure_admin
from datagrove.settings import Settings

log = logging.getLogger("datagrove.bootstrap")

BOOTSTRAP_SCOPES = frozenset({"data", "user", "audit", "dashboard", "account"})
CREDENTIALS_FILE = "admin-credentials.json"


def bootstrap(settings: Settings, catalog: Catalog, auth: Authenticator) -> Path | None:
    """Ensure the admin credentials exist; returns the credentials file when one was written."""
    admin, created = ensure_admin(catalog)
    configured = False
    if settings.bootstrap_client_id and settings.bootstrap_client_secret:
        configured = True
        if catalog.get_oauth_client(settings.bootstrap_client_id) is None:
            auth.create_client(
                user_id=admin.id,
                scopes=BOOTSTRAP_SCOPES,
                client_id=settings.bootstrap_client_id,
                secret=settings.bootstrap_client_secret,
                name="bootstrap",
            )
            log.info(
                "created the bootstrap OAuth client",
                extra={"fields": {"client_id": settings.bootstrap_client_id}},
            )
    if settings.bootstrap_token:
        configured = True
        if catalog.find_access_token(digest(settings.bootstrap_token)) is None:
            auth.create_developer_token(user_id=admin.id, name="bootstrap", token=settings.bootstrap_token)
            log.info("created the bootstrap developer token")
    if configured or not created:
        return None
    client, secret = auth.create_client(user_id=admin.id, scopes=BOOTSTRAP_SCOPES, name="admin")
    _, token = auth.create_developer_token(user_id=admin.id, name="admin")
    path = settings.data_dir.resolve() / CREDENTIALS_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(
            {
                "user_id": admin.id,
                "client_id": client.client_id,
                "client_secret": secret,
                "developer_token": token,
            },
            handle,
            indent=2,
        )
    log.warning("created an admin; its credentials are in this file", extra={"fields": {"path": str(path)}})
    return path
