"""Background threads yield the cores to the event loop.

Linux schedules threads one by one, each with its own niceness. When the node's cores are
contended (100 analysed students ask for ~1.2 of 2 cores, plus Postgres and whatever else
runs there), a detector or decoder thread at the loop's priority takes turns with it, and
every Socket.IO ack waits for that turn. At nice 10 the loop runs first and the
background work takes what is left: a late sample (dropped, counted), never a late ack.
Measured for the detector workers (media/sampler.py): loop p99 85 ms → 24–46 ms.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

BACKGROUND_NICENESS = 10
# aiortc names each receiver's decoding thread "<kind>-decoder" (RTCRtpReceiver._run);
# libvpx's own threads are started from it later and inherit its niceness.
_DECODER_SUFFIX = "-decoder"


def lower_thread_priority(native_id: int) -> bool:
    """Set one thread to BACKGROUND_NICENESS unless it is there already; True if changed."""
    try:
        if os.getpriority(os.PRIO_PROCESS, native_id) >= BACKGROUND_NICENESS:
            return False
        os.setpriority(os.PRIO_PROCESS, native_id, BACKGROUND_NICENESS)
        return True
    except (AttributeError, OSError):
        # Not Linux, a thread that just ended, or not allowed: it keeps the loop's priority.
        logger.debug("cannot lower the priority of thread %d", native_id, exc_info=True)
        return False


def lower_current_thread() -> None:
    """A thread pool's initializer: the worker starts at background priority."""
    lower_thread_priority(threading.get_native_id())


def lower_decoder_threads() -> int:
    """Lower every aiortc decoder thread not lowered yet; how many were changed.

    aiortc gives no hook into the thread it starts per received track, so this is called
    once a track delivered its first frame (its decoder thread exists by then).
    """
    changed = 0
    for thread in threading.enumerate():
        if thread.name.endswith(_DECODER_SUFFIX) and thread.native_id is not None:
            changed += lower_thread_priority(thread.native_id)
    return changed
