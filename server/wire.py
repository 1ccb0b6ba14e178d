"""The composition root: the whole node is built here, in one pass, before anything starts.

Every object receives what it needs through its constructor (LiveKit's `pkg/service/wire.go`
builds its server from one list of providers the same way); nothing is bound or assigned
afterwards. Three kinds of edge would otherwise form circles, and are broken like this:

- Postgres opens only at start-up (the embedded server picks its port then): repositories
  take a `Database` handle that the database cleanup context opens (rooms/store/database.py).
- Events that flow back up the graph — an attempt ended (its sockets close, its analysis
  peer goes), another node changed an attempt (drop the cached copy) — travel on a
  `Signal` built first and handed to the sender and to each listener's constructor.
- The node registry reports placement's load with each heartbeat, while placement reads the
  registry's node list: the registry gets a function that asks placement, built just below it.

`create_app` (server/app.py) stores the parts behind typed keys for the HTTP handlers and
appends the cleanup contexts that start and stop them, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from core.signals import Signal
from media import SpeechListener
from rooms.accounts import AccountService
from rooms.attempts import Attempt, AttemptService
from rooms.classroom import Classroom
from rooms.lti_scores import RetryPolicy
from rooms.passwords import Passwords
from rooms.placement import Occupancy
from rooms.presence import PresenceTracker
from rooms.presence_feed import PresenceFeed
from rooms.protocols import PresenceState
from rooms.scheduling import Scheduling
from rooms.signin_limits import SignInLimits
from rooms.store.accounts import AccountRepository
from rooms.store.attempts import AttemptStore
from rooms.store.audit import AuditLog
from rooms.store.catalog import Catalog
from rooms.store.classroom import ClassroomStore
from rooms.store.database import Database
from rooms.store.event_writer import EventWriter
from rooms.store.exam_versions import ExamVersions
from rooms.store.grades import GradeChange, GradeStore
from rooms.store.lti import LtiStore
from rooms.store.lti_keys import ToolKeys
from rooms.store.members import RoomAccess
from rooms.store.privacy import Revocations, StudentData
from rooms.store.results import Results
from rooms.store.review import EvidenceStore, Review
from rooms.store.review_queue import ReviewQueue
from rooms.store.schedule import ScheduleStore
from rooms.tokens import TokenService
from signaling.analysis_relay import RedisAnalysisRelay
from signaling.guard import Admission, Limits
from signaling.hub import Hub, SocketNotifier, create_server
from signaling.rtc import AnalysisGateway, RtcRouter
from signaling.student import StudentNamespace
from signaling.teacher import TeacherNamespace

from .analysis import LocalAnalysis, local_analysis
from .backends import Backends, Cluster, cluster_parts, local_backends
from .http.credentials import AccountSessions
from .http.members import MembersApi
from .http.oidc import OidcRoutes, TeacherSignIn, oidc_routes
from .lti import LtiTool, build_tool
from .lti.messages import message_handlers
from .lti.services import LtiServices, build_lti_services
from .metrics import Metrics
from .settings import Settings
from .speaking import speech_listener


@dataclass(frozen=True)
class Node:
    """Everything one node is made of; the cleanup contexts start and stop its parts."""

    settings: Settings
    metrics: Metrics
    database: Database
    writer_database: Database
    tokens: TokenService
    catalog: Catalog
    review: Review
    evidence: EvidenceStore
    student_data: StudentData
    revocations: Revocations
    audit: AuditLog
    writer: EventWriter
    backends: Backends
    hub: Hub
    attempts: AttemptService
    classroom: Classroom
    rtc: RtcRouter
    tracker: PresenceTracker
    feed: PresenceFeed
    occupancy: Occupancy
    analysis: LocalAnalysis | None
    relay: RedisAnalysisRelay | None
    accounts: AccountService
    members_api: MembersApi
    oidc: OidcRoutes
    results: Results  # step 12: a room's results and statistics
    review_queue: ReviewQueue  # step 12: flagged attempts across my rooms
    lti: LtiTool  # step 11: the LTI 1.3 tool (docs/lti.md)
    scheduling: Scheduling  # windows and accommodations (server/http/schedule_api.py)
    speech: SpeechListener | None = None  # Step 13 B: the microphones of speaking exams
    # Step 12 A: exam versions and lifecycle, grades, and the signal LTI passback listens to.
    exam_versions: ExamVersions | None = None
    grades: GradeStore | None = None
    grade_changed: Signal[GradeChange] | None = None
    lti_services: LtiServices | None = None  # Step 11 B: AGS outbox, NRPS, deep linking, proctoring


def build_node(settings: Settings) -> Node:
    """Build (not start) a node from its settings."""
    metrics = Metrics()
    database = Database("main")
    # The durable writer's own connections: a storm of joins must not queue acknowledgements.
    writer_database = Database("writer")
    revocations = Revocations(database)
    tokens = TokenService(
        settings.secret.get_secret_value(),
        admin_token=settings.admin_token.get_secret_value(),
        is_revoked=revocations.is_revoked,
    )
    audit = AuditLog(database)
    access = RoomAccess(database, audit)
    catalog = Catalog(database, access)
    review = Review(database, catalog)
    # Sent after commit whenever an attempt's grade changes (submit, manual grade, re-grade);
    # the lead connects LTI grade passback (the AGS outbox) to it.
    grade_changed: Signal[GradeChange] = Signal("grade-changed")
    grades = GradeStore(database, review, audit, grade_changed)
    accounts = AccountService(
        AccountRepository(database),
        audit,
        Passwords(),
        limits=SignInLimits(
            settings.signin_account_failures,
            settings.signin_account_window_seconds,
            settings.signin_address_attempts,
            settings.signin_address_window_seconds,
        ),
        idle_seconds=settings.session_idle_seconds,
        absolute_seconds=settings.session_absolute_seconds,
    )

    def committed(count: int, oldest: float, kinds: dict[str, int]) -> None:
        metrics.commit_latency.observe(oldest)
        for kind, n in kinds.items():
            metrics.events_written.labels(kind).inc(n)

    writer = EventWriter(
        writer_database,
        flush_ms=settings.writer_flush_ms,
        batch_size=settings.writer_batch_size,
        max_pending=settings.writer_max_pending,
        on_commit=committed,
    )

    attempt_closed: Signal[Attempt] = Signal("attempt-closed")
    changed_elsewhere: Signal[str] = Signal("attempt-changed-elsewhere")
    parts = (
        cluster_parts(settings, on_attempt_changed=changed_elsewhere.send)
        if settings.redis_url.get_secret_value()
        else None
    )
    limits = Limits(settings.max_message_bytes, settings.events_per_second, settings.event_burst)
    sio = create_server(limits, settings.allowed_origins, parts.manager if parts is not None else None)
    notifier = SocketNotifier(sio)

    attempts = AttemptService(
        AttemptStore(database),
        catalog,
        writer,
        notifier,
        on_change=parts.manager.attempt_changed if parts is not None else None,
        closed=attempt_closed,
        changed_elsewhere=changed_elsewhere,
        grader=grades,
    )

    async def teachers_told(room_id: str, attempt_id: str, state: PresenceState) -> None:
        await notifier.teachers(room_id, "presence", {"attempt_id": attempt_id, "presence": state})

    async def room_moved(room_id: str, host: str) -> None:
        # The room moved (or is new): analysis peers on its old host are closed there
        # (RedisAnalysisRelay.sweep), so its students offer again, to the new host.
        await notifier.room_students(room_id, "rtc", {"target": "server", "type": "bye", "reason": "host_changed"})

    backends = (
        parts.finish(on_lost=teachers_told, on_placed=room_moved) if parts is not None else local_backends(settings)
    )
    placement = backends.placement

    analysis = local_analysis(settings, metrics, attempts, notifier)
    relay = _relay(backends.cluster, analysis, attempts)
    entry: AnalysisGateway | None = relay if relay is not None else analysis
    if entry is not None:
        _close_with_attempts(entry, attempt_closed)
    rtc = RtcRouter(sio, attempts, catalog, audit, settings.secret.get_secret_value(), analysis=entry)

    async def presence_changed(room_id: str, attempt_id: str, state: PresenceState) -> None:
        await teachers_told(room_id, attempt_id, state)
        if state == "offline":
            await rtc.attempt_gone(attempt_id)

    # Pushed by one task in slices: a burst of disconnects must not push inline (rooms/presence_feed.py).
    feed = PresenceFeed(presence_changed)
    tracker = PresenceTracker(backends.presence, settings.reconnect_grace_seconds, feed.changed, attempts.record_gap)
    occupancy = Occupancy(placement, linger=settings.reconnect_grace_seconds)
    classroom = Classroom(ClassroomStore(database), catalog, attempts, backends.presence, notifier, audit)

    guard: dict[str, Any] = {
        "on_refused": lambda code: metrics.acks_refused.labels(code).inc(),
        "admission": Admission(
            settings.max_connections,
            settings.connects_per_ip_per_second,
            settings.connect_burst_per_ip,
            settings.connects_per_second,
            settings.connect_burst,
        ),
    }
    students = StudentNamespace(
        "/student",
        tokens,
        limits,
        accounts=accounts,
        attempts=attempts,
        presence=tracker,
        occupancy=occupancy,
        notifier=notifier,
        rtc_handler=rtc.from_student,
        # Camera snapshots go where offers go: this node's analysis, or the room's host.
        frame_handler=entry.frame if entry is not None else None,
        analysis_transport=settings.analysis_transport,
        on_count=metrics.sockets.labels("/student").inc,
        **guard,
    )
    teachers = TeacherNamespace(
        "/teacher",
        tokens,
        limits,
        accounts=accounts,
        classroom=classroom,
        occupancy=occupancy,
        rtc_handler=rtc.from_teacher,
        on_count=metrics.sockets.labels("/teacher").inc,
        **guard,
    )
    hub = Hub(sio, students, teachers, notifier, attempt_closed=attempt_closed)

    # Step 11: the LTI tool and its services share the tool's keys; grades reach the platform
    # through the outbox whenever step 12's grading changes one (after its commit).
    tool_keys = ToolKeys(database, overlap=timedelta(days=settings.lti_key_overlap_days))
    lti_services = build_lti_services(
        database,
        catalog,
        attempts,
        attempt_closed,
        launch_url=settings.base_url.rstrip("/") + "/lti/launch",
        policy=RetryPolicy(
            settings.lti_retry_base_seconds, settings.lti_retry_cap_seconds, settings.lti_retry_max_tries
        ),
        poll_seconds=settings.lti_outbox_poll_seconds,
        signing_key=tool_keys.signing_key,
    )
    lti_tool = build_tool(settings, LtiStore(database), tool_keys, message_handlers(lti_services.handlers()))

    async def grade_to_platform(change: GradeChange) -> None:
        await lti_services.grades.publish_grade(change.attempt_id, change.grade, change.grade_max, final=change.final)

    grade_changed.connect(grade_to_platform)
    return Node(
        settings=settings,
        metrics=metrics,
        database=database,
        writer_database=writer_database,
        tokens=tokens,
        catalog=catalog,
        review=review,
        evidence=EvidenceStore(database, review),
        student_data=StudentData(database),
        revocations=revocations,
        audit=audit,
        writer=writer,
        backends=backends,
        hub=hub,
        attempts=attempts,
        classroom=classroom,
        rtc=rtc,
        tracker=tracker,
        feed=feed,
        occupancy=occupancy,
        analysis=analysis,
        relay=relay,
        accounts=accounts,
        members_api=MembersApi(catalog, access, accounts, backends.presence),
        oidc=oidc_routes(settings, audit, sign_in=TeacherSignIn(accounts, AccountSessions(accounts))),
        results=Results(database, catalog),
        review_queue=ReviewQueue(database, catalog),
        speech=speech_listener(analysis, metrics, attempts, notifier),
        exam_versions=ExamVersions(database, catalog),
        grades=grades,
        grade_changed=grade_changed,
        lti=lti_tool,
        lti_services=lti_services,
        scheduling=Scheduling(ScheduleStore(database), catalog, ClassroomStore(database), attempts, notifier, audit),
    )


def _relay(cluster: Cluster | None, local: LocalAnalysis | None, attempts: AttemptService) -> RedisAnalysisRelay | None:
    """In a cluster the room's host answers analysis offers, through this relay."""
    if cluster is None:
        return None
    placement = cluster.placement

    async def room_of(attempt_id: str) -> str:
        return (await attempts.attempt(attempt_id)).room_id

    return RedisAnalysisRelay(
        cluster.redis,
        placement.node_id,
        local=local,
        room_of=room_of,
        host_of=placement.current_host,
        holder_of=placement.holder,
        accepting=lambda: not placement.draining,
        prefix=placement.prefix,
        ticks=cluster.registry.on_tick,
    )


def _close_with_attempts(entry: AnalysisGateway, attempt_closed: Signal[Attempt]) -> None:
    async def attempt_ended(attempt: Attempt) -> None:
        await entry.close(attempt.id)

    attempt_closed.connect(attempt_ended)


NODE: web.AppKey[Node] = web.AppKey("node")
