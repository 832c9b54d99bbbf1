"""The Iceberg REST catalog's published OpenAPI document (vendored beside this module, see
README.md) as a test oracle: its operations, and its schemas to validate responses against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS31Validator

DOCUMENT = Path(__file__).with_name("rest-catalog-open-api.yaml")


@dataclass(frozen=True)
class Spec:
    document: dict[str, Any]

    @classmethod
    def load(cls) -> Spec:
        return cls(yaml.safe_load(DOCUMENT.read_text()))

    def has_operation(self, method: str, path: str) -> bool:
        """Whether the document has ``method`` on ``path`` (ours have no ``{prefix}`` segment)."""
        for candidate in (path, path.replace("/v1/", "/v1/{prefix}/", 1)):
            if method.lower() in self.document["paths"].get(candidate, {}):
                return True
        return False

    def validate(self, schema: str, instance: Any) -> None:
        """Raise unless ``instance`` is valid against ``components/schemas/<schema>``."""
        root = {"$ref": f"#/components/schemas/{schema}", "components": self.document["components"]}
        OAS31Validator(root).validate(instance)
