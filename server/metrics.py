"""Prometheus metrics, one registry per app (several apps can share a process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "proctor_http_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.sockets = Gauge("proctor_connected_sockets", "Connected Socket.IO clients", ["namespace"], registry=r)
        self.live_rooms = Gauge("proctor_live_rooms", "Rooms live on this node", registry=r)
        self.events_written = Counter(
            "proctor_events_written", "Durable events committed by kind", ["kind"], registry=r
        )
        self.writer_queue = Gauge("proctor_writer_queue_depth", "Events waiting for commit", registry=r)
        self.commit_latency = Histogram(
            "proctor_commit_latency_seconds",
            "Event received to commit",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.acks_refused = Counter("proctor_acks_refused", "Error acks by code", ["code"], registry=r)
        self.loop_lag = Histogram(
            "proctor_event_loop_lag_seconds",
            "Event loop scheduling lag",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.dropped_frames = Gauge(
            "proctor_dropped_frames", "Analysis samples dropped because inference was busy", registry=r
        )
        self.stale_samples = Gauge(
            "proctor_stale_samples",
            "Analysis samples due with no new frame since the last one (a stalled camera or page)",
            registry=r,
        )
        self.live_peers = Gauge("proctor_live_peers", "Server-side WebRTC analysis peers", registry=r)
        self.analysed_samples = Gauge(
            "proctor_analysed_samples", "Frames the face detector analysed since start", registry=r
        )
        # The histogram says how often the loop was late; this says how late it got lately,
        # which a scrape every 30 s or less never misses.
        self.loop_lag_recent_max = Gauge(
            "proctor_event_loop_lag_recent_max_seconds", "Worst event-loop lag of the last 30 s", registry=r
        )
        # step 9: refreshed by the /readyz check on every scrape (server/http/observability.py).
        self.ready = Gauge("proctor_ready", "1 when /readyz would answer 200 (checked at each scrape)", registry=r)
