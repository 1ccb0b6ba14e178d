"""The LTI Advantage services of one node, built in one place: the platform client (tokens),
grades (AGS and the outbox worker), the roster (NRPS), deep linking and proctoring.

`build_lti_services` is called by the composition root (server/wire.py); `lti_services_ctx`
is the cleanup context that runs the outbox worker and closes the HTTP client. The registry of
LTI message handlers (the launch side) calls `deep_linking.handle`,
`proctoring.start_proctoring` and `proctoring.end_assessment` (docs/lti.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from core.signals import Signal
from core.tasks import stop_task
from rooms.attempts import AttemptService
from rooms.lti import DEEP_LINKING_REQUEST, END_ASSESSMENT, START_PROCTORING, Launch
from rooms.lti_scores import RetryPolicy
from rooms.store.catalog import Catalog
from rooms.store.database import Database
from rooms.store.lti_deep_links import DeepLinkStore, account_of
from rooms.store.lti_endpoints import LinkEndpoints
from rooms.store.lti_outbox import GradeOutbox
from rooms.store.lti_proctoring import ProctoringStore
from rooms.store.lti_roster import RosterStore
from rooms.timer import Attempt

from .ags import AgsClient
from .deep_linking import DeepLinking
from .nrps import RosterImport
from .outbox import GradePublisher
from .platform_client import PlatformClient, SigningKey
from .proctoring import Proctoring

logger = logging.getLogger(__name__)

# The launch side's registry type: `async def handler(request, launch) -> web.Response`.
MessageHandler = Callable[[web.Request, Launch], Awaitable[web.Response]]


@dataclass(frozen=True)
class LtiServices:
    client: PlatformClient
    outbox: GradeOutbox
    grades: GradePublisher
    roster: RosterImport
    roster_store: RosterStore
    deep_linking: DeepLinking
    proctoring: Proctoring

    def handlers(self) -> dict[str, MessageHandler]:
        """The message handlers this part adds to the launch's dispatch registry."""
        return {
            DEEP_LINKING_REQUEST: self.deep_linking.handle,
            START_PROCTORING: self.proctoring.start_proctoring,
            END_ASSESSMENT: self.proctoring.end_assessment,
        }


def build_lti_services(
    database: Database,
    catalog: Catalog,
    attempts: AttemptService,
    attempt_closed: Signal[Attempt],
    *,
    launch_url: str,
    policy: RetryPolicy,
    poll_seconds: float = 1.0,
    signing_key: SigningKey,
) -> LtiServices:
    key = signing_key  # the tool's keys (rooms/store/lti_keys.py ToolKeys.signing_key)
    client = PlatformClient(key)
    endpoints = LinkEndpoints(database)
    outbox = GradeOutbox(database)
    grades = GradePublisher(outbox, endpoints, AgsClient(client, endpoints), policy, poll_seconds=poll_seconds)
    roster_store = RosterStore(database)

    async def owner_of(launch: Launch) -> str | None:
        return await account_of(database, launch.platform.id, launch.subject)

    async def end_attempt(room_id: str, student_id: str) -> None:
        attempt_id = await database.fetchval(
            "SELECT id::text FROM attempts WHERE room_id = $1::uuid AND student_id = $2", room_id, student_id
        )
        if attempt_id is not None:
            await attempts.submit(attempt_id, "platform")

    proctoring = Proctoring(ProctoringStore(database), endpoints, client, key, end_attempt)

    async def attempt_ended(attempt: Attempt) -> None:
        # A submitted attempt's score goes out from the grade signal (step 12 grades at close,
        # server/wire.py); a terminated one is reported to the platform's proctoring service.
        if attempt.status == "terminated":
            await proctoring.attempt_terminated(attempt)

    attempt_closed.connect(attempt_ended)
    return LtiServices(
        client=client,
        outbox=outbox,
        grades=grades,
        roster=RosterImport(client, endpoints, roster_store),
        roster_store=roster_store,
        deep_linking=DeepLinking(
            DeepLinkStore(database), catalog, endpoints, key, launch_url=launch_url, owner_of=owner_of
        ),
        proctoring=proctoring,
    )


LTI_SERVICES: web.AppKey[LtiServices] = web.AppKey("lti_services")
STOP_GRACE_SECONDS = 2.0


async def lti_services_ctx(app: web.Application) -> AsyncIterator[None]:
    services = app[LTI_SERVICES]
    task = asyncio.create_task(services.grades.run(), name="lti-grade-outbox")
    yield
    # Asked first, cancelled only after a grace: a claim or a try that is under way finishes
    # and records its outcome, instead of leaving its row leased until the lease runs out.
    services.grades.stop()
    done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
    if not done:
        await stop_task(task)
    await services.client.close()
