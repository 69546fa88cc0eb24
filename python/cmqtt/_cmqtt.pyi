"""Type stubs of the native module cmqtt._cmqtt (import cmqtt instead)."""

import builtins
import os
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Literal, Optional, Union, final

__all__ = [
    "Client",
    "MessageIterator",
    "Event",
    "Message",
    "Modem",
    "Supervisor",
    "SupervisorMessageIterator",
    "SupervisorEvent",
    "Delivery",
    "__version__",
    "core_version",
    "Error",
    "ModemError",
    "ConnectionLostError",
    "TimeoutError",
    "SerialError",
    "NotConnectedError",
    "ClosedError",
    "UnsupportedError",
    "ProtocolError",
    "DeliveryError",
    "OutboxFullError",
    "StaleHandleError",
]
__version__: str
core_version: str

_Bytes = Union[bytes, bytearray, memoryview]
_Topic = Union[str, bytes, bytearray]
_Payload = Union[str, bytes, bytearray, memoryview]
_TopicList = Union[_Topic, Iterable[Union[_Topic, tuple[_Topic, int]]]]
_ModelName = Literal["a7600", "sim7600", "sim7672x"]

class Error(Exception):
    """Base class of every cmqtt error; ``code`` is the modem's <err> code or None."""

    code: Optional[int]

class ModemError(Error):
    command: str

class ConnectionLostError(Error, ConnectionError):
    client: int
    cause: int

class TimeoutError(Error, builtins.TimeoutError):
    command: str

class SerialError(Error, OSError): ...

class NotConnectedError(Error):
    client: int

class ClosedError(Error): ...
class UnsupportedError(Error): ...

class ProtocolError(Error):
    command: str

class DeliveryError(Error):
    """A supervised publish will never be delivered (Delivery.wait_delivered())."""

    id: int
    status: Literal["failed", "dropped"]
    reason: Optional[str]

class OutboxFullError(Error):
    """The Supervisor's outbox is full: when_full="error", a blocking publish that found no
    room within pub_timeout, or any publish into a full outbox from inside a callback (which
    never waits). Nothing was queued."""

class StaleHandleError(Error, ValueError):
    """The client handle is gone: the modem restarted since it was acquired (or it was
    released). Start the service and acquire the client again. Also a ValueError."""

@final
class Message:
    """A message received from the broker."""

    @property
    def topic(self) -> str: ...
    @property
    def topic_bytes(self) -> bytes: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def client(self) -> int: ...
    def __new__(cls, topic: _Topic, payload: _Payload, client: int = 0) -> "Message": ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Event:
    """A modem-level event."""

    @property
    def kind(
        self,
    ) -> Literal[
        "connection_lost",
        "no_network",
        "ping_failed",
        "modem_restarted",
        "boot",
        "unsolicited",
        "malformed",
        "overflow",
        "message",
    ]: ...
    @property
    def client(self) -> Optional[int]: ...
    @property
    def cause(self) -> Optional[int]: ...
    @property
    def code(self) -> Optional[int]: ...
    @property
    def text(self) -> Optional[str]: ...
    @property
    def queue(self) -> Optional[str]: ...
    @property
    def dropped(self) -> Optional[int]: ...
    @property
    def message(self) -> Optional[Message]: ...

@final
class MessageIterator(Iterator[Message]):
    def __iter__(self) -> "MessageIterator": ...
    def __next__(self) -> Message: ...

@final
class Client:
    """An MQTT client of the modem (index 0 or 1), from Modem.client()."""

    def __enter__(self) -> "Client": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def release(self) -> None: ...
    @property
    def released(self) -> bool: ...
    @property
    def index(self) -> int: ...
    @property
    def connected(self) -> bool: ...
    def connect(
        self,
        server: str,
        keepalive: int = 60,
        clean_session: bool = True,
        username: Optional[str] = None,
        password: Optional[str] = None,
        timeout: float = 120.0,
    ) -> None: ...
    def disconnect(self, timeout: Optional[float] = None) -> None: ...
    def query_connected(self) -> bool: ...
    def publish(
        self,
        topic: _Topic,
        payload: Optional[_Payload] = None,
        qos: int = 0,
        retain: bool = False,
        timeout: float = 60.0,
        dup: bool = False,
    ) -> None: ...
    def subscribe(self, topics: _TopicList, qos: int = 0) -> None: ...
    def unsubscribe(self, topics: _TopicList) -> None: ...
    def subscriptions(self) -> list[bytes]: ...
    def recv(self, timeout: Optional[float] = None) -> Optional[Message]: ...
    def messages(self, timeout: Optional[float] = None) -> MessageIterator: ...
    @property
    def pending_messages(self) -> int: ...
    @property
    def dropped_messages(self) -> int: ...
    @property
    def on_message(self) -> Optional[Callable[[Message], object]]: ...
    @on_message.setter
    def on_message(self, cb: Optional[Callable[[Message], object]]) -> None: ...
    @property
    def on_connection_lost(self) -> Optional[Callable[[int, int], object]]: ...
    @on_connection_lost.setter
    def on_connection_lost(self, cb: Optional[Callable[[int, int], object]]) -> None: ...
    def set_will(self, topic: _Topic, payload: _Payload, qos: int = 0) -> None: ...
    def set_check_utf8(self, on: bool) -> None: ...
    def set_op_timeout(self, seconds: int) -> None: ...
    def set_version(self, version: int) -> None: ...
    def set_ssl_context(self, ctx: int) -> None: ...
    def config(self) -> dict[str, Union[int, bool]]: ...

@final
class Modem:
    """A SIMCom modem and its MQTT service; a context manager (close() on exit)."""

    def __new__(
        cls,
        port: Union[str, os.PathLike[str]],
        baudrate: int = 115200,
        model: Optional[_ModelName] = None,
        timeout: float = 10.0,
        queue_capacity: int = 1024,
        echo_off: bool = True,
    ) -> "Modem": ...
    def __enter__(self) -> "Modem": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def closed_reason(self) -> Optional[str]: ...
    @property
    def port(self) -> str: ...
    @property
    def model(self) -> _ModelName: ...
    @property
    def model_name(self) -> str: ...
    @property
    def firmware(self) -> str: ...
    @property
    def max_payload(self) -> int: ...
    @property
    def max_topic(self) -> int: ...
    def start(self) -> bool: ...
    def stop(self) -> None: ...
    def supports_mqtt(self) -> bool: ...
    def service_running(self) -> bool: ...
    def client(
        self,
        index: int,
        client_id: str,
        tls: bool = False,
        version: Optional[int] = None,
        check_utf8: Optional[bool] = None,
        op_timeout: Optional[int] = None,
        ssl_context: Optional[int] = None,
    ) -> Client: ...
    def ssl_configure(
        self,
        ctx: int,
        *,
        ssl_version: Optional[int] = None,
        auth_mode: Optional[int] = None,
        ca_cert: Optional[str] = None,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
        enable_sni: Optional[bool] = None,
        ignore_local_time: Optional[bool] = None,
        negotiate_time: Optional[int] = None,
    ) -> None: ...
    def cert_upload(self, name: str, data: Union[_Bytes, str, os.PathLike[str]]) -> None: ...
    def cert_list(self) -> list[str]: ...
    def cert_delete(self, name: str) -> None: ...
    def imei(self) -> str: ...
    def signal_quality(self) -> tuple[int, int]: ...
    def registration(self) -> int: ...
    def command(self, line: str, prefix: str = "", timeout: float = 9.0) -> list[str]: ...
    def recv_event(self, timeout: Optional[float] = None) -> Optional[Event]: ...
    @property
    def on_no_network(self) -> Optional[Callable[[], object]]: ...
    @on_no_network.setter
    def on_no_network(self, cb: Optional[Callable[[], object]]) -> None: ...
    @property
    def on_event(self) -> Optional[Callable[[Event], object]]: ...
    @on_event.setter
    def on_event(self, cb: Optional[Callable[[Event], object]]) -> None: ...
    @property
    def dropped_events(self) -> int: ...
    def byte_counts(self) -> tuple[int, int]: ...

_State = Literal["opening", "starting", "connecting", "connected", "waiting", "stopped"]
_DeliveryStatus = Literal["queued", "delivered", "failed", "dropped"]
_WhenFull = Literal["block", "error", "drop_oldest"]

@final
class Delivery:
    """The ticket of one Supervisor.publish(): check it or wait for it."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> _DeliveryStatus: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def done(self) -> bool: ...
    def wait(self, timeout: Optional[float] = None) -> _DeliveryStatus: ...
    def wait_delivered(self, timeout: Optional[float] = None) -> None: ...

@final
class SupervisorEvent:
    """One transition of a Supervisor (on_event / recv_event())."""

    @property
    def kind(
        self,
    ) -> Literal["state", "lost", "restored", "attempt_failed", "dropped", "failed", "modem"]: ...
    @property
    def state(self) -> Optional[_State]: ...
    @property
    def attempt(self) -> Optional[int]: ...
    @property
    def delay(self) -> Optional[float]: ...
    @property
    def loss(
        self,
    ) -> Optional[Literal["connection", "network", "modem_restart", "port", "unresponsive"]]: ...
    @property
    def cause(self) -> Optional[int]: ...
    @property
    def text(self) -> Optional[str]: ...
    @property
    def id(self) -> Optional[int]: ...
    @property
    def event(self) -> Optional[Event]: ...

@final
class SupervisorMessageIterator(Iterator[Message]):
    def __iter__(self) -> "SupervisorMessageIterator": ...
    def __next__(self) -> Message: ...

@final
class Supervisor:
    """A supervised MQTT client kept connected through faults, with an outbox; a context
    manager (close() on exit)."""

    def __new__(
        cls,
        port: Union[str, os.PathLike[str]],
        server: str,
        client_id: str,
        *,
        baudrate: int = 115200,
        index: int = 0,
        tls: bool = False,
        username: Optional[str] = None,
        password: Optional[str] = None,
        keepalive: int = 60,
        clean_session: bool = True,
        will: Optional[Union[tuple[_Topic, _Payload], tuple[_Topic, _Payload, int]]] = None,
        subscriptions: Optional[_TopicList] = None,
        outbox_capacity: int = 1000,
        when_full: _WhenFull = "block",
        outbox_path: Optional[Union[str, os.PathLike[str]]] = None,
        outbox_sync: bool = False,
        backoff: Optional[tuple[float, float, float]] = None,
        model: Optional[_ModelName] = None,
        sync_timeout: float = 10.0,
        connect_timeout: float = 120.0,
        pub_timeout: float = 60.0,
        max_send_failures: int = 5,
        queue_capacity: int = 4096,
        version: Optional[int] = None,
        check_utf8: Optional[bool] = None,
        op_timeout: Optional[int] = None,
        ssl_context: Optional[int] = None,
        ssl_config: Optional[dict[str, Union[int, bool, str, None]]] = None,
        certs: Optional[dict[str, Union[_Bytes, str, os.PathLike[str]]]] = None,
        usb_serial: Optional[str] = None,
        usb_interface: Optional[int] = None,
        on_message: Optional[Callable[[Message], object]] = None,
        on_event: Optional[Callable[["SupervisorEvent"], object]] = None,
    ) -> "Supervisor": ...
    def __enter__(self) -> "Supervisor": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def publish(
        self,
        topic: _Topic,
        payload: Optional[_Payload] = None,
        qos: int = 1,
        retain: bool = False,
    ) -> Delivery: ...
    def subscribe(self, topics: _TopicList, qos: int = 1) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Optional[Message]: ...
    def messages(self, timeout: Optional[float] = None) -> SupervisorMessageIterator: ...
    def recv_event(self, timeout: Optional[float] = None) -> Optional[SupervisorEvent]: ...
    @property
    def on_message(self) -> Optional[Callable[[Message], object]]: ...
    @on_message.setter
    def on_message(self, cb: Optional[Callable[[Message], object]]) -> None: ...
    @property
    def on_event(self) -> Optional[Callable[[SupervisorEvent], object]]: ...
    @on_event.setter
    def on_event(self, cb: Optional[Callable[[SupervisorEvent], object]]) -> None: ...
    @property
    def state(self) -> _State: ...
    def wait_connected(self, timeout: Optional[float] = None) -> bool: ...
    def flush(self, timeout: Optional[float] = None) -> bool: ...
    @property
    def outbox_len(self) -> int: ...
    def pending(self) -> list[Delivery]: ...
