"""The worker's consumer (`worker_consumer`): Celery's, changed in what a broker connection loss
does to the messages the lost connection delivered.

On the Redis transport acknowledgements are emulated: a delivered message waits in kombu's
`unacked` hash in Redis until it is acknowledged (HDEL) or put back on its queue, and either is a
plain Redis command that any connection can send. kombu's objects do not allow it, though. When
the connection is lost, kombu (5.7, with Celery 5.7):

- tries once, as it closes the channel, to put every unacknowledged message back on its queue. If
  Redis is down at that moment (a restart), the attempt fails, nothing retries it, and the
  messages wait for the visibility timeout (12 minutes here). If Redis is reachable (a dropped
  connection, or a restart already over), the messages of tasks still running go back too, and
  run a second time. And if the channel is closed after the connection was collected, the attempt
  itself raises AttributeError, which stops the worker ("Unrecoverable error");
- forgets the connection settings of the closed channel, so that a message of it acknowledged
  later raises that AttributeError too.

So at a connection loss this consumer takes the lost connection's messages away from kombu: it
points them at a relay, which acknowledges or rejects them through whichever connection is up,
waiting for the reconnection if none is, and gives kombu's attempt nothing to do. The messages of
tasks still running stay unacknowledged until the tasks finish and acknowledge them; the others
(received, not running: a countdown, or one waiting for a pool process) are put back on their
queue once the worker has reconnected. This goes with
worker_cancel_long_running_tasks_on_connection_loss off (app.tasks).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.state import active_requests

logger = logging.getLogger(__name__)

# Celery warns at every connection loss, with worker_cancel_long_running_tasks_on_connection_loss
# off, that the running tasks "cannot be acknowledged as the connection is gone": untrue here, and
# the setting is given explicitly, so its future default does not matter.
warnings.filterwarnings(
    "ignore",
    r"\s*In Celery 5\.1 we introduced an optional breaking change",
    CPendingDeprecationWarning,
)


class Consumer(CeleryConsumer):  # type: ignore[misc]  # Celery is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._relay = Relay()

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        self._relay.detach()
        qos = self._task_qos()
        if qos is not None:
            qos._flush()  # forget the messages acknowledged already
            running = running_tags()
            for message in qos._delivered.values():
                message.channel = self._relay
            self._relay.put_back_later(tuple(tag for tag in qos._delivered if tag not in running))
            qos._delivered.clear()  # nothing for kombu to put back as it closes the channel
        super().on_connection_error_after_connected(exc)

    def connect(self) -> Any:
        """Connect (the Connection bootstep: at start and after every connection loss), then
        settle what the relay holds through the new connection."""
        connection = super().connect()
        self._relay.attach(connection.default_channel)
        return connection

    def _task_qos(self) -> Any:
        channel = getattr(self.task_consumer, "channel", None)
        return None if channel is None else channel.qos


class Relay:
    """The channel, for kombu's Message, of the messages of lost connections: it acknowledges,
    rejects and puts back messages through the live channel, and keeps what it cannot do yet (no
    live channel, or Redis gone again) for the next reconnection."""

    no_ack_consumers = None  # read by Message.ack

    def __init__(self) -> None:
        self._live: Any = None
        self._settle: list[tuple[str, bool | None]] = []  # (tag, requeue); None: acknowledge
        self._put_back: dict[str, None] = {}  # tags, in order

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        self._put_back.pop(delivery_tag, None)
        self._settle.append((delivery_tag, None))
        self._flush()

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self._put_back.pop(delivery_tag, None)
        self._settle.append((delivery_tag, requeue))
        self._flush()

    def put_back_later(self, tags: tuple[str, ...]) -> None:
        self._put_back.update(dict.fromkeys(tags))

    def detach(self) -> None:
        self._live = None

    def attach(self, channel: Any) -> None:
        self._live = channel
        self._flush()

    def _flush(self) -> None:
        if self._live is None:
            return
        try:
            while self._settle:
                tag, requeue = self._settle[0]
                if requeue is None:
                    self._live.basic_ack(tag)
                else:
                    self._live.basic_reject(tag, requeue=requeue)
                del self._settle[0]
            if self._put_back:
                running = running_tags()
                tags = [tag for tag in self._put_back if tag not in running]
                for tag in tags:
                    # In a transaction that moves the message from the unacked hash to its queue
                    # only if it is still in the hash: never twice, whoever else tries.
                    self._live.qos.restore_by_tag(tag)
                    del self._put_back[tag]
                # Running now (received before the loss, started since): acknowledged when done.
                self._put_back.clear()
                if tags:
                    logger.info("Put back %d unacknowledged message(s) on reconnecting", len(tags))
        except Exception as exc:  # kombu and redis-py raise several families of errors
            logger.warning(
                "Could not settle %d message(s) of a lost connection yet (%r): "
                "trying again after the next reconnection",
                len(self._settle) + len(self._put_back),
                exc,
            )


def running_tags() -> set[str]:
    """Delivery tags of the messages of tasks running now that acknowledge them when done."""
    return {
        request.message.delivery_tag
        for request in tuple(active_requests)
        if request.task.acks_late and not request.acknowledged
    }
