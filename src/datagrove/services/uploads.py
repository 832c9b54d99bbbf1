"""Upload sessions: Domo's product-API upload flow (open, parts, commit) on a dataset's stream.

An upload session *is* an execution of the dataset's stream, and its upload id is the execution id,
so parts are validated, converted and committed by ``StreamService`` exactly as stream parts are
(one code path, the same exactly-once commit). This module only maps a dataset and an upload id to
that stream and execution:

* Opening a session opens a new execution, which (like any new execution) aborts the stream's other
  ACTIVE execution: a stream has one upload in flight at a time.
* An upload id that is not an execution of this dataset's stream is 404, as if it did not exist.
* A dataset whose stream was deleted (``DELETE /v1/streams/{id}`` keeps the dataset) gets a new
  APPEND stream when a session is opened on it.
* Permissions are the stream service's: EDIT on the dataset for everything here.
"""

from __future__ import annotations

from dataclasses import dataclass

from datagrove.catalog.streams import StreamCatalog
from datagrove.domain import Actor, Dataset, Execution, PartState, UpdateMethod
from datagrove.errors import NotFound
from datagrove.services.access import Action
from datagrove.services.datasets import DatasetService
from datagrove.services.streams import StreamService
from datagrove.tables.types import Column


@dataclass(frozen=True)
class Upload:
    """An upload session: the dataset, its stream and the execution behind the upload id."""

    dataset: Dataset
    stream_id: int
    execution: Execution

    @property
    def upload_id(self) -> int:
        return self.execution.id


@dataclass(frozen=True)
class CommittedUpload:
    upload: Upload
    part_count: int


class UploadService:
    def __init__(
        self, *, datasets: DatasetService, streams: StreamService, stream_catalog: StreamCatalog
    ) -> None:
        self._datasets = datasets
        self._streams = streams
        self._stream_catalog = stream_catalog

    def open(self, *, actor: Actor, dataset_id: str, update_method: UpdateMethod | None) -> Upload:
        """A new session (needs EDIT). Without ``update_method`` the stream's own applies, unless the
        commit names one."""
        dataset = self._datasets.get(actor=actor, dataset_id=dataset_id, action=Action.EDIT)
        stream_ids = self._stream_ids(dataset.id)
        if stream_ids:
            stream_id = stream_ids[0]
        else:
            stream_id = self._stream_catalog.create_stream(
                dataset_id=dataset.id, update_method=UpdateMethod.APPEND
            ).id
        execution = self._streams.create_execution(
            actor=actor, stream_id=stream_id, update_method=update_method
        )
        return Upload(dataset, stream_id, execution)

    def create_and_open(
        self, *, actor: Actor, name: str, description: str, columns: list[Column], update_method: UpdateMethod
    ) -> Upload:
        """A new dataset (with its stream) and a session on it: the upload page's "new dataset"."""
        view = self._streams.create(
            actor=actor, name=name, description=description, columns=columns, update_method=update_method
        )
        execution = self._streams.create_execution(
            actor=actor, stream_id=view.stream.id, update_method=update_method
        )
        return Upload(view.dataset, view.stream.id, execution)

    def locate(self, *, actor: Actor, dataset_id: str, upload_id: int) -> Upload:
        """The session ``upload_id`` of the dataset (needs VIEW; what may be done with it is the
        stream service's to decide). 404 for an unknown dataset or upload id, and for an upload id
        of another dataset."""
        dataset = self._datasets.get(actor=actor, dataset_id=dataset_id)
        for stream_id in self._stream_ids(dataset.id):
            try:
                execution = self._streams.get_execution(
                    actor=actor, stream_id=stream_id, execution_id=upload_id
                )
            except NotFound:
                continue
            return Upload(dataset, stream_id, execution)
        raise NotFound(f"upload {upload_id} of dataset {dataset.id} does not exist")

    def commit(
        self, *, actor: Actor, dataset_id: str, upload_id: int, update_method: UpdateMethod | None
    ) -> CommittedUpload:
        """Commit the session (the stream service's exactly-once commit); ``update_method`` decides
        APPEND or REPLACE when given. A retried commit answers the same."""
        found = self.locate(actor=actor, dataset_id=dataset_id, upload_id=upload_id)
        committed = self._streams.commit(
            actor=actor, stream_id=found.stream_id, execution_id=upload_id, update_method=update_method
        )
        parts = self._stream_catalog.parts(upload_id)
        return CommittedUpload(
            Upload(found.dataset, found.stream_id, committed),
            sum(p.state is PartState.READY for p in parts),
        )

    def abort(self, *, actor: Actor, dataset_id: str, upload_id: int) -> Upload:
        found = self.locate(actor=actor, dataset_id=dataset_id, upload_id=upload_id)
        aborted = self._streams.abort(actor=actor, stream_id=found.stream_id, execution_id=upload_id)
        return Upload(found.dataset, found.stream_id, aborted)

    def _stream_ids(self, dataset_id: str) -> list[int]:
        return [s.id for s in self._stream_catalog.list_streams(limit=10, offset=0, dataset_id=dataset_id)]
