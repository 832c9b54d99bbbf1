"""``ReaderAccess``: what a reader outside Datagrove needs to read one table's files.

The Iceberg REST catalog hands it out with each loaded table (the ``config`` of a LoadTableResult,
pyiceberg's FileIO property names). For a local directory that is nothing: the metadata names the
files by path, for a reader on the same host. For S3 it is one of three deployment choices
(docs/iceberg-rest.md):

* a role to assume (``iceberg_s3_role_arn``): STS AssumeRole with a session policy allowing only
  ``s3:GetObject`` under the table's prefix and ``s3:ListBucket`` of that prefix, for
  ``iceberg_s3_credentials_seconds``; the reader gets those temporary credentials;
* the server's own keys (``iceberg_s3_vend_server_credentials``), for deployments whose every
  reader is trusted as much as the server;
* neither: the endpoint and region only; readers bring their own credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from datagrove.errors import DatagroveError
from datagrove.tables.storage import S3Options, StorageError


@dataclass(frozen=True)
class VendingPolicy:
    """How S3 readers get credentials (see the module docstring)."""

    role_arn: str | None = None
    sts_endpoint: str | None = None
    seconds: int = 900
    server_credentials: bool = False


def read_only_policy(location: str) -> dict[str, Any]:
    """The session policy of credentials for one table at ``location`` (``s3://bucket/prefix``):
    read its objects and list its prefix, nothing else."""
    parsed = urlparse(location)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}/*"],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
            },
        ],
    }


class ReaderAccess:
    def __init__(self, s3: S3Options | None, policy: VendingPolicy) -> None:
        """``s3``: the server's own S3 settings (None: local storage)."""
        self._s3 = s3
        self._policy = policy

    def config(self, location: str, *, session_name: str) -> dict[str, str]:
        """FileIO properties a reader needs for the table at ``location``; ``session_name`` names
        the reader in the STS session (shows in the store's access logs)."""
        if self._s3 is None:
            return {}
        config = {
            key: value
            for key, value in {
                "s3.endpoint": self._s3.endpoint,
                "s3.region": self._s3.region,
                "client.region": self._s3.region,
                "s3.path-style-access": "true" if self._s3.path_style else None,
                "s3.force-virtual-addressing": "false" if self._s3.path_style else None,
            }.items()
            if value is not None
        }
        if self._policy.role_arn:
            config.update(self._assumed(location, session_name))
        elif self._policy.server_credentials and self._s3.access_key_id and self._s3.secret_access_key:
            config["s3.access-key-id"] = self._s3.access_key_id
            config["s3.secret-access-key"] = self._s3.secret_access_key
        return config

    def _assumed(self, location: str, session_name: str) -> dict[str, str]:
        import botocore.exceptions
        import botocore.session

        assert self._s3 is not None and self._policy.role_arn is not None
        client = botocore.session.get_session().create_client(
            "sts",
            region_name=self._s3.region or "us-east-1",
            endpoint_url=self._policy.sts_endpoint or self._s3.endpoint,
            aws_access_key_id=self._s3.access_key_id,
            aws_secret_access_key=self._s3.secret_access_key,
        )
        try:
            answer = client.assume_role(
                RoleArn=self._policy.role_arn,
                RoleSessionName=session_name[:64],
                Policy=json.dumps(read_only_policy(location)),
                DurationSeconds=self._policy.seconds,
            )
        except botocore.exceptions.ClientError as exc:
            raise DatagroveError("the store refused to vend read credentials for the table") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError("the credential service could not be reached") from exc
        finally:
            client.close()
        credentials = answer["Credentials"]
        return {
            "s3.access-key-id": credentials["AccessKeyId"],
            "s3.secret-access-key": credentials["SecretAccessKey"],
            "s3.session-token": credentials["SessionToken"],
            "s3.session-token-expires-at-ms": str(int(credentials["Expiration"].timestamp() * 1000)),
        }
