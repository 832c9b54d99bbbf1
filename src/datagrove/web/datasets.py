"""The datasets pages: ``/ui/datasets`` (the list) and ``/ui/datasets/{id}`` (one dataset)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from datagrove.services.web_sessions import WebSession
from datagrove.web.render import page
from datagrove.web.session import current_web_session

router = APIRouter()

PAGE_SIZE = 50


@router.get("/ui/datasets")
def dataset_list(request: Request, session: WebSession = Depends(current_web_session)) -> Response:
    datasets = request.app.state.services.datasets.list_datasets(
        actor=session.actor, limit=PAGE_SIZE, offset=0
    )
    return page(
        request, "datasets.html", session=session, title="Datasets", section="datasets", datasets=datasets
    )
