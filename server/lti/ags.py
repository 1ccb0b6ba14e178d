"""Assignment and Grade Services, the tool's side (https://www.imsglobal.org/spec/lti-ags/v2p0):
the line item of a linked room (the launch's own `lineitem`, else found by resource link id in
the line items container, else created there) and a score posted to `{lineitem}/scores`.

Called by the outbox worker (server/lti/outbox.py), which owns retries; a failure here is a
`PlatformError` saying why.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, RootModel

from rooms.lti_scores import (
    LINEITEM_MEDIA_TYPE,
    LINEITEMS_MEDIA_TYPE,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    SCORE_MEDIA_TYPE,
    Delivery,
)
from rooms.store.lti_endpoints import LinkedPlatform, LinkEndpoints

from .platform_client import PlatformClient, PlatformError

logger = logging.getLogger(__name__)

DEFAULT_SCORE_MAXIMUM = 100.0
MAX_LINEITEMS = 1000  # a container page longer than this is not searched further


class LineItem(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1, max_length=2048)
    score_maximum: float | None = Field(default=None, alias="scoreMaximum", ge=0)
    label: str = Field(default="", max_length=1024)
    resource_link_id: str | None = Field(default=None, alias="resourceLinkId", max_length=1024)


class LineItems(RootModel[list[LineItem]]):
    root: list[LineItem] = Field(max_length=MAX_LINEITEMS)


def scores_url(lineitem_url: str) -> str:
    """`{lineitem}/scores`, the query string (some platforms put the item id there) kept."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


# One token for every AGS call of a link (the line item and the score), so a delivery costs
# one token request per platform and hour, not one per call.
_AGS_SCOPES = {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE}


def _scopes(granted: tuple[str, ...]) -> frozenset[str]:
    # Ask only for what the launch said the platform grants (an empty list: it said nothing).
    return frozenset(_AGS_SCOPES & set(granted)) if granted else frozenset(_AGS_SCOPES)


class AgsClient:
    def __init__(self, client: PlatformClient, endpoints: LinkEndpoints) -> None:
        self._client = client
        self._endpoints = endpoints

    async def lineitem(self, linked: LinkedPlatform, score_maximum: float | None) -> str:
        link = linked.link
        if link.lineitem_url:
            return link.lineitem_url
        if not link.lineitems_url:
            raise PlatformError("the platform announced no line item service for this link", retry=False)
        scopes = _scopes(link.ags_scopes)
        if not scopes & {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY}:
            raise PlatformError("the platform grants no line item scope for this link", retry=False)
        answer = await self._client.call(
            linked.platform,
            scopes,
            "GET",
            link.lineitems_url,
            accept=LINEITEMS_MEDIA_TYPE,
            params={"resource_link_id": link.resource_link_id},
        )
        if answer.status != 200:
            raise PlatformError(f"listing line items answered {answer.status}", status=answer.status)
        for item in answer.json_as(LineItems).root:
            if item.resource_link_id in (None, link.resource_link_id):
                await self._endpoints.set_lineitem(link.id, item.id)
                return item.id
        if SCOPE_LINEITEM not in scopes:
            raise PlatformError("the platform grants no scope to create a line item", retry=False)
        created = await self._client.call(
            linked.platform,
            scopes,
            "POST",
            link.lineitems_url,
            accept=LINEITEM_MEDIA_TYPE,
            content_type=LINEITEM_MEDIA_TYPE,
            body={
                "label": link.title or "Proctor exam",
                "scoreMaximum": score_maximum or DEFAULT_SCORE_MAXIMUM,
                "resourceLinkId": link.resource_link_id,
                "tag": "proctor",
            },
        )
        if created.status not in (200, 201):
            raise PlatformError(f"creating the line item answered {created.status}", status=created.status)
        item = created.json_as(LineItem)
        await self._endpoints.set_lineitem(link.id, item.id)
        return item.id

    async def post_score(self, linked: LinkedPlatform, delivery: Delivery) -> None:
        lineitem = await self.lineitem(linked, delivery.score_maximum)
        scopes = _scopes(linked.link.ags_scopes)
        if SCOPE_SCORE not in scopes:
            raise PlatformError("the platform grants no score scope for this link", retry=False)
        answer = await self._client.call(
            linked.platform,
            scopes,
            "POST",
            scores_url(lineitem),
            accept="application/json",
            content_type=SCORE_MEDIA_TYPE,
            body=delivery.score_json(),
        )
        if not 200 <= answer.status < 300:
            raise PlatformError(f"posting the score answered {answer.status}", status=answer.status)
