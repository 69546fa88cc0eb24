/*
 * cmqtt.h - C API of cmqtt: drive the MQTT client built into SIMCom LTE modems (A7600/A76xx,
 * SIM7600, SIM7672X) over AT commands. Link with -lcmqtt (libcmqtt.so or libcmqtt.a; see
 * `pkg-config --libs cmqtt`).
 *
 * THE CONTRACT (it holds for every function below; it is not repeated per function)
 *
 * Handles. cmqtt_modem, cmqtt_client, cmqtt_supervisor, cmqtt_delivery, cmqtt_message and
 * cmqtt_string_list are opaque. Every handle you receive is owned by you and freed with its own
 * _free function exactly once. _free(NULL) is a no-op. Freeing a handle twice, or using it after
 * (or while) freeing it, is undefined behaviour, as with free(3). A client may outlive its modem
 * handle: the session (the serial port and the library's two threads) ends when the modem and all
 * its clients are freed. Freeing a client disconnects it if needed and releases its index
 * (AT+CMQTTREL). A supervisor owns a session of its own (it opens the port itself); freeing it
 * disconnects, releases and closes the port.
 *
 * Threads. Every handle may be used from several threads at once: the library serialises the
 * AT commands (a command waiting for a broker's acknowledgement does not block the other
 * client). Calls block until the modem answers or their timeout expires.
 *
 * Arguments and results. Every function checks every pointer argument: a NULL where a value is
 * required gives CMQTT_ERR_NULL_ARGUMENT (documented exceptions: optional pointers, payloads of
 * length 0, and the len_out of accessors). Every const char * argument must be NUL-terminated
 * UTF-8, else CMQTT_ERR_INVALID_UTF8. Arguments outside what the spec or the model allows give
 * CMQTT_ERR_INVALID_ARGUMENT before any byte is sent. Output pointers (..._out) are set to NULL
 * first, so they are NULL on every failure. No function crashes on bad input it can detect, and
 * no Rust panic ever crosses this boundary: it becomes CMQTT_ERR_PANIC (a library bug).
 *
 * Errors. Fallible functions return a cmqtt_result (CMQTT_OK = 0; stable, grouped values; see
 * the enum). After a failure, on the same thread: cmqtt_last_error_message() has the full text
 * (the command, what the modem said, what to do), cmqtt_last_modem_code() the modem's numeric
 * <err> code or -1. cmqtt_result_str() gives static text for any value, never NULL.
 *
 * Callbacks. Message, connection-lost and event callbacks run on the library's dispatch thread (one
 * per modem session), one at a time, never while the library holds a lock. So a callback MAY call
 * any function on any handle (publish or subscribe on its own client, run a command), but it MUST
 * NOT free a client or modem (or anything it still uses): cmqtt_client_free and cmqtt_modem_free
 * called from a callback free nothing and return CMQTT_ERR_IN_CALLBACK; free the handle from
 * another thread after the callback returned. A callback that blocks delays the callbacks after it
 * (never the reception of data): keep callbacks short. Each stream (a client's messages, the
 * modem's events) is one bounded queue that the dispatch thread drains into its callback: a slow
 * message callback lets that queue overflow (oldest dropped, counted, reported as
 * CMQTT_EVENT_OVERFLOW), but never hides a lost connection: cmqtt_client_is_connected is state
 * recorded before anything is queued, connection-lost events are never evicted by data, and
 * connection-lost callbacks run before queued messages. A callback must not let a C++ exception
 * escape nor longjmp out (undefined behaviour). After cmqtt_client_set_callbacks,
 * cmqtt_modem_set_event_callback, cmqtt_supervisor_set_callbacks or a _free returns, the replaced
 * callbacks are not running and will not be called again (their userdata may be freed), unless the
 * call was made from that very callback, which then finishes normally. Passing NULL as a callback
 * is allowed and removes it. Userdata is passed back untouched, on the dispatch thread. The trace
 * callback (cmqtt_modem_options.trace) is different: it runs on whichever thread sends or receives
 * a line, while the library holds its command lock; it must only copy the line: every function that
 * would talk to the modem, change callbacks or free a handle returns CMQTT_ERR_IN_CALLBACK when
 * called from it.
 *
 * Supervisor. A cmqtt_supervisor keeps one client connected through faults on a thread of its own
 * (the supervisor thread), which opens the port, configures, connects, subscribes, restores all
 * that after every fault and sends the outbox. Its message callback runs on the modem's dispatch
 * thread; its event callback on the thread that caused the event: the supervisor thread for state
 * changes, losses, restores, failed attempts and failed publishes; the thread calling
 * cmqtt_supervisor_publish for a DROPPED event; the dispatch thread for MODEM events; the thread
 * calling cmqtt_supervisor_free for the final STOPPED state. Both callbacks follow the rules above
 * (any function but a _free; no C++ exception or longjmp out), and from the event callback, which
 * holds up supervision while it runs, nothing may wait: cmqtt_supervisor_wait_connected, _flush,
 * _receive and cmqtt_delivery_wait with a timeout > 0 return CMQTT_ERR_IN_CALLBACK there (and a
 * publish made from it on the supervisor thread never waits for room in the outbox). A delivery
 * ticket (cmqtt_delivery) is independent of its supervisor: it may be used from any thread and
 * outlive the supervisor (it then keeps the status it had).
 *
 * Lifetimes. A cmqtt_message passed to a callback (and the cmqtt_event, cmqtt_supervisor_event
 * and strings passed to callbacks) are valid only during the call: copy what you keep, e.g. with
 * cmqtt_message_copy (cmqtt_message_free on the lent message is detected and ignored). A message
 * from cmqtt_client_receive, cmqtt_supervisor_receive or cmqtt_message_copy is owned by you: free
 * it with one cmqtt_message_free. Strings returned by the library are never to be freed by you:
 * those of cmqtt_result_str, cmqtt_version, cmqtt_model_name and cmqtt_state_name are static;
 * those of cmqtt_modem_firmware and cmqtt_modem_model_name live as long as the modem handle; the
 * topic and payload of a message as long as the message; the items of a cmqtt_string_list as
 * long as the list; cmqtt_last_error_message() until the next failing call on the same thread.
 *
 * Secrets. Passwords never appear in traces, logs or error messages (they are shown as
 * "<redacted>").
 */

#ifndef CMQTT_H
#define CMQTT_H

/* Generated with cbindgen:0.29.4 */

/* Generated from ffi/src by cbindgen (ffi/build.rs). Do not edit: change ffi/src, then
 * regenerate with   CMQTT_REGENERATE_HEADER=1 cargo build -p cmqtt-ffi
 * (cargo test -p cmqtt-ffi fails while this file is not current). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * The largest queue capacity (`cmqtt_modem_options.queue_capacity`,
 * `cmqtt_supervisor_config.queue_capacity` and `.outbox_capacity`): 1048576 items.
 */
#define CMQTT_MAX_QUEUE_CAPACITY (1 << 20)

/**
 * Which way a traced AT line went.
 */
enum cmqtt_direction
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * Host to modem.
     */
    CMQTT_DIRECTION_SEND = 0,
    /**
     * Modem to host.
     */
    CMQTT_DIRECTION_RECEIVE = 1,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_direction cmqtt_direction;
#else
typedef uint32_t cmqtt_direction;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * The result of every fallible function. Values are stable (never renumbered) and grouped:
 *
 * | range   | group |
 * |---------|-------|
 * | 0       | success |
 * | 1..99   | arguments and usage: nothing was sent to the modem |
 * | 100..199| transport: the serial port or the session |
 * | 200..299| AT layer: what the exchange with the modem came to |
 * | 301..335| the modem's own `<err>` code N (1..35) as 300 + N, one to one (`<err>` 0 is success: `CMQTT_OK`) |
 * | 400..499| the supervisor's outbox and delivery tickets |
 * | 900..   | internal |
 *
 * On a failure, `cmqtt_last_error_message()` has the full text and `cmqtt_last_modem_code()` the
 * modem's numeric code (if it gave one).
 */
enum cmqtt_result
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * Success.
     */
    CMQTT_OK = 0,
    /**
     * A required pointer argument is NULL.
     */
    CMQTT_ERR_NULL_ARGUMENT = 1,
    /**
     * A `const char *` argument is not valid UTF-8.
     */
    CMQTT_ERR_INVALID_UTF8 = 2,
    /**
     * An argument is outside what the spec or the model allows (QoS 3, a topic over 1024 bytes,
     * client index 2, a `"` in a client id, ...). Nothing was sent.
     */
    CMQTT_ERR_INVALID_ARGUMENT = 3,
    /**
     * The function may not be called from this callback (see the contract at the top).
     */
    CMQTT_ERR_IN_CALLBACK = 4,
    /**
     * The serial port could not be opened or configured.
     */
    CMQTT_ERR_SERIAL = 100,
    /**
     * Reading or writing the port failed.
     */
    CMQTT_ERR_IO = 101,
    /**
     * The session is closed (port gone, EOF, or the modem handle was freed): open the modem again.
     */
    CMQTT_ERR_CLOSED = 102,
    /**
     * No (complete) answer in time; from `cmqtt_client_receive`: no message in time.
     */
    CMQTT_ERR_TIMEOUT = 200,
    /**
     * The modem answered something that makes no sense for the command.
     */
    CMQTT_ERR_PROTOCOL = 201,
    /**
     * The modem answered a bare `ERROR`.
     */
    CMQTT_ERR_MODEM_ERROR = 202,
    /**
     * The modem answered `+CME ERROR: <n>`.
     */
    CMQTT_ERR_CME_ERROR = 203,
    /**
     * The modem answered `+CMS ERROR: <n>`.
     */
    CMQTT_ERR_CMS_ERROR = 204,
    /**
     * The modem reported an `<err>` code outside the spec's table (see `cmqtt_last_modem_code`).
     */
    CMQTT_ERR_MODEM_CODE_UNKNOWN = 205,
    /**
     * The client is not connected to a broker (connect first).
     */
    CMQTT_ERR_NOT_CONNECTED = 206,
    /**
     * The broker connection was lost while the call waited (`+CMQTTCONNLOST`).
     */
    CMQTT_ERR_CONNECTION_LOST = 207,
    /**
     * This model does not support the command or form.
     */
    CMQTT_ERR_UNSUPPORTED = 208,
    /**
     * Modem `<err>` 1: failed.
     */
    CMQTT_ERR_FAILED = 301,
    /**
     * Modem `<err>` 2: bad UTF-8 string.
     */
    CMQTT_ERR_BAD_UTF8 = 302,
    /**
     * Modem `<err>` 3: sock connect fail.
     */
    CMQTT_ERR_SOCK_CONNECT_FAIL = 303,
    /**
     * Modem `<err>` 4: sock create fail.
     */
    CMQTT_ERR_SOCK_CREATE_FAIL = 304,
    /**
     * Modem `<err>` 5: sock close fail.
     */
    CMQTT_ERR_SOCK_CLOSE_FAIL = 305,
    /**
     * Modem `<err>` 6: message receive fail.
     */
    CMQTT_ERR_MESSAGE_RECEIVE_FAIL = 306,
    /**
     * Modem `<err>` 7: network open fail.
     */
    CMQTT_ERR_NETWORK_OPEN_FAIL = 307,
    /**
     * Modem `<err>` 8: network close fail.
     */
    CMQTT_ERR_NETWORK_CLOSE_FAIL = 308,
    /**
     * Modem `<err>` 9: network not opened.
     */
    CMQTT_ERR_NETWORK_NOT_OPENED = 309,
    /**
     * Modem `<err>` 10: client index error.
     */
    CMQTT_ERR_CLIENT_INDEX_ERROR = 310,
    /**
     * Modem `<err>` 11: no connection.
     */
    CMQTT_ERR_NO_CONNECTION = 311,
    /**
     * Modem `<err>` 12: invalid parameter.
     */
    CMQTT_ERR_INVALID_PARAMETER = 312,
    /**
     * Modem `<err>` 13: not supported operation.
     */
    CMQTT_ERR_NOT_SUPPORTED = 313,
    /**
     * Modem `<err>` 14: client is busy.
     */
    CMQTT_ERR_CLIENT_BUSY = 314,
    /**
     * Modem `<err>` 15: require connection fail.
     */
    CMQTT_ERR_REQUIRE_CONNECTION_FAIL = 315,
    /**
     * Modem `<err>` 16: sock sending fail.
     */
    CMQTT_ERR_SOCK_SENDING_FAIL = 316,
    /**
     * Modem `<err>` 17: timeout (the modem's own, e.g. no PUBACK from the broker).
     */
    CMQTT_ERR_MODEM_TIMEOUT = 317,
    /**
     * Modem `<err>` 18: topic is empty.
     */
    CMQTT_ERR_TOPIC_EMPTY = 318,
    /**
     * Modem `<err>` 19: client is used.
     */
    CMQTT_ERR_CLIENT_USED = 319,
    /**
     * Modem `<err>` 20: client not acquired.
     */
    CMQTT_ERR_CLIENT_NOT_ACQUIRED = 320,
    /**
     * Modem `<err>` 21: client not released.
     */
    CMQTT_ERR_CLIENT_NOT_RELEASED = 321,
    /**
     * Modem `<err>` 22: length out of range.
     */
    CMQTT_ERR_LENGTH_OUT_OF_RANGE = 322,
    /**
     * Modem `<err>` 23: network is opened.
     */
    CMQTT_ERR_NETWORK_IS_OPENED = 323,
    /**
     * Modem `<err>` 24: packet fail.
     */
    CMQTT_ERR_PACKET_FAIL = 324,
    /**
     * Modem `<err>` 25: DNS error.
     */
    CMQTT_ERR_DNS_ERROR = 325,
    /**
     * Modem `<err>` 26: socket is closed by server.
     */
    CMQTT_ERR_SOCKET_CLOSED_BY_SERVER = 326,
    /**
     * Modem `<err>` 27: connection refused: unaccepted protocol version.
     */
    CMQTT_ERR_REFUSED_PROTOCOL_VERSION = 327,
    /**
     * Modem `<err>` 28: connection refused: identifier rejected.
     */
    CMQTT_ERR_REFUSED_IDENTIFIER = 328,
    /**
     * Modem `<err>` 29: connection refused: server unavailable.
     */
    CMQTT_ERR_REFUSED_SERVER_UNAVAILABLE = 329,
    /**
     * Modem `<err>` 30: connection refused: bad user name or password.
     */
    CMQTT_ERR_REFUSED_BAD_CREDENTIALS = 330,
    /**
     * Modem `<err>` 31: connection refused: not authorized.
     */
    CMQTT_ERR_REFUSED_NOT_AUTHORIZED = 331,
    /**
     * Modem `<err>` 32: handshake fail.
     */
    CMQTT_ERR_HANDSHAKE_FAIL = 332,
    /**
     * Modem `<err>` 33: not set certificate.
     */
    CMQTT_ERR_CERTIFICATE_NOT_SET = 333,
    /**
     * Modem `<err>` 34: open session failed.
     */
    CMQTT_ERR_OPEN_SESSION_FAILED = 334,
    /**
     * Modem `<err>` 35: disconnect from server failed.
     */
    CMQTT_ERR_DISCONNECT_FAILED = 335,
    /**
     * The supervisor's outbox is full and its policy is `CMQTT_WHEN_FULL_ERROR`: nothing was
     * queued. Wait for deliveries (`cmqtt_supervisor_flush`) or raise `outbox_capacity`.
     */
    CMQTT_ERR_OUTBOX_FULL = 400,
    /**
     * The publish will never be sent: the modem refused it repeatedly, or a QoS 0 publish was
     * cut off by a connection loss. `cmqtt_last_error_message()` says why.
     */
    CMQTT_ERR_DELIVERY_FAILED = 401,
    /**
     * The publish was dropped from a full outbox to make room (`CMQTT_WHEN_FULL_DROP_OLDEST`).
     */
    CMQTT_ERR_DELIVERY_DROPPED = 402,
    /**
     * A bug in the library: a Rust panic was caught at the boundary (the handle stays usable
     * as far as the library knows; please report it).
     */
    CMQTT_ERR_PANIC = 900,
    /**
     * An error kind this version of the C API does not know (from a newer core).
     */
    CMQTT_ERR_INTERNAL = 901,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_result cmqtt_result;
#else
typedef uint32_t cmqtt_result;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * The modem families the library knows.
 */
enum cmqtt_model
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * In options: identify the model (`AT+CGMM`). As a result: no modem (NULL handle).
     */
    CMQTT_MODEL_AUTO = 0,
    /**
     * A7600 / A76xx (A7670, A7608, ...).
     */
    CMQTT_MODEL_A7600 = 1,
    /**
     * SIM7600 family.
     */
    CMQTT_MODEL_SIM7600 = 2,
    /**
     * SIM7672X / SIM7652X.
     */
    CMQTT_MODEL_SIM7672X = 3,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_model cmqtt_model;
#else
typedef uint32_t cmqtt_model;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What a modem-level event is.
 */
enum cmqtt_event_kind
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * `+CMQTTCONNLOST`: `client` lost its broker connection; `code` is the cause (1 socket
     * closed passively, 2 socket reset, 3 network closed). Connect again.
     */
    CMQTT_EVENT_CONNECTION_LOST = 1,
    /**
     * `+CMQTTNONET`: the network is gone; start the service again (`cmqtt_modem_start`).
     */
    CMQTT_EVENT_NO_NETWORK = 2,
    /**
     * `RDY`: the modem restarted; every MQTT state on it is lost.
     */
    CMQTT_EVENT_MODEM_RESTARTED = 3,
    /**
     * Bytes that should have been a received message did not add up; `text` says what was lost.
     */
    CMQTT_EVENT_MALFORMED = 4,
    /**
     * A queue was full: `dropped` items were discarded so far; `text` names the queue.
     */
    CMQTT_EVENT_OVERFLOW = 5,
    /**
     * Any other unsolicited line; `text` is the line.
     */
    CMQTT_EVENT_UNSOLICITED = 6,
    /**
     * Boot noise (`+CPIN: READY`, `SMS DONE`, ...); `text` is the line.
     */
    CMQTT_EVENT_BOOT = 7,
    /**
     * `+CMQTTPING`: a keepalive ping of `client` failed; `code` is the modem's code.
     */
    CMQTT_EVENT_PING_FAILED = 8,
    /**
     * A message reached the modem-level stream; `client` received it, `text` is its topic.
     */
    CMQTT_EVENT_MESSAGE = 9,
    /**
     * An event kind this version of the C API does not know; `text` describes it.
     */
    CMQTT_EVENT_OTHER = 99,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_event_kind cmqtt_event_kind;
#else
typedef uint32_t cmqtt_event_kind;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What a supervisor event is. Newer versions may add kinds: ignore the ones you do not know.
 */
enum cmqtt_supervisor_event_kind
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * A new state in `state`; for `CMQTT_STATE_WAITING` also `attempt` (failed attempts so
     * far) and `delay_ms` (the wait before the next one).
     */
    CMQTT_SUPERVISOR_EVENT_STATE = 1,
    /**
     * Something broke (`loss`, `cause`, `text`); restoring starts.
     */
    CMQTT_SUPERVISOR_EVENT_LOST = 2,
    /**
     * Connected again after a loss or failed attempts; `attempt` counts the attempts made
     * (the successful one included).
     */
    CMQTT_SUPERVISOR_EVENT_RESTORED = 3,
    /**
     * Attempt number `attempt` to (re)connect failed; `text` is the error.
     */
    CMQTT_SUPERVISOR_EVENT_ATTEMPT_FAILED = 4,
    /**
     * The publish with ticket id `id` was dropped from a full outbox (drop-oldest policy).
     */
    CMQTT_SUPERVISOR_EVENT_DROPPED = 5,
    /**
     * The publish with ticket id `id` will never be sent; `text` says why.
     */
    CMQTT_SUPERVISOR_EVENT_FAILED = 6,
    /**
     * Any other modem event (unsolicited lines, boot noise, malformed data, queue overflows,
     * ping failures), in `modem_event`.
     */
    CMQTT_SUPERVISOR_EVENT_MODEM = 7,
    /**
     * A subscription (`text`: "filter: reason") was refused by the broker or the modem and
     * is dropped (not retried after reconnects).
     */
    CMQTT_SUPERVISOR_EVENT_SUBSCRIBE_FAILED = 8,
    /**
     * The outbox file was damaged at start: damaged records were skipped (the rest kept) and
     * the file as found was kept aside; `text` says what and where.
     */
    CMQTT_SUPERVISOR_EVENT_OUTBOX_RECOVERED = 9,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_supervisor_event_kind cmqtt_supervisor_event_kind;
#else
typedef uint32_t cmqtt_supervisor_event_kind;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Where the supervised client stands.
 */
enum cmqtt_state
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * No state: a NULL handle, or an event that is not a state change.
     */
    CMQTT_STATE_NONE = 0,
    /**
     * Opening the port and synchronising with the modem.
     */
    CMQTT_STATE_OPENING = 1,
    /**
     * Starting the service, uploading certificates, configuring SSL, acquiring the client.
     */
    CMQTT_STATE_STARTING = 2,
    /**
     * Connecting to the broker and subscribing.
     */
    CMQTT_STATE_CONNECTING = 3,
    /**
     * Connected: the outbox is being sent.
     */
    CMQTT_STATE_CONNECTED = 4,
    /**
     * Waiting before the next attempt (the event says which attempt and how long).
     */
    CMQTT_STATE_WAITING = 5,
    /**
     * Stopped by `cmqtt_supervisor_free`.
     */
    CMQTT_STATE_STOPPED = 6,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_state cmqtt_state;
#else
typedef uint32_t cmqtt_state;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What broke, in a `CMQTT_SUPERVISOR_EVENT_LOST` event.
 */
enum cmqtt_loss
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * Not a loss event.
     */
    CMQTT_LOSS_NONE = 0,
    /**
     * The broker connection (`+CMQTTCONNLOST`); `cause` is its cause (1 socket closed
     * passively, 2 socket reset, 3 network closed; 0 when inferred from a failed command).
     */
    CMQTT_LOSS_CONNECTION = 1,
    /**
     * The network (`+CMQTTNONET`): the service is restarted.
     */
    CMQTT_LOSS_NETWORK = 2,
    /**
     * The modem restarted (`RDY`): everything is rebuilt on it.
     */
    CMQTT_LOSS_MODEM_RESTART = 3,
    /**
     * The serial port failed or vanished; `text` says how. It is reopened (by path or USB
     * identity).
     */
    CMQTT_LOSS_PORT = 4,
    /**
     * The modem stopped answering or answered nonsense; `text` says what.
     */
    CMQTT_LOSS_UNRESPONSIVE = 5,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_loss cmqtt_loss;
#else
typedef uint32_t cmqtt_loss;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Where a publish stands.
 */
enum cmqtt_delivery_state
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * No ticket (NULL).
     */
    CMQTT_DELIVERY_NONE = 0,
    /**
     * Waiting in the outbox (not connected, or behind others, or being sent).
     */
    CMQTT_DELIVERY_QUEUED = 1,
    /**
     * The modem reported it sent: for QoS 1 and 2 the broker acknowledged it.
     */
    CMQTT_DELIVERY_DELIVERED = 2,
    /**
     * It will never be sent (see `cmqtt_delivery_wait` for why).
     */
    CMQTT_DELIVERY_FAILED = 3,
    /**
     * Dropped from a full outbox (drop-oldest policy).
     */
    CMQTT_DELIVERY_DROPPED = 4,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_delivery_state cmqtt_delivery_state;
#else
typedef uint32_t cmqtt_delivery_state;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Where the supervisor finds the modem.
 */
enum cmqtt_endpoint
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * A device path (`port`), reopened by the same path after it vanished.
     */
    CMQTT_ENDPOINT_SERIAL = 0,
    /**
     * A USB serial port found by identity (`usb_vid`, `usb_pid`, optionally `usb_serial` and
     * `usb_interface`), wherever it re-enumerates (`/dev/ttyUSB2` today, `/dev/ttyUSB6` after
     * a modem reset).
     */
    CMQTT_ENDPOINT_USB = 1,
    /**
     * A serial-over-TCP bridge (or `cmqtt sim --tcp`) at `tcp_address` ("host:port").
     */
    CMQTT_ENDPOINT_TCP = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_endpoint cmqtt_endpoint;
#else
typedef uint32_t cmqtt_endpoint;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What a full outbox does with a new publish.
 */
enum cmqtt_when_full
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
    /**
     * `cmqtt_supervisor_publish` waits for room, up to `pub_timeout_s` (then
     * `CMQTT_ERR_OUTBOX_FULL`); from any cmqtt callback it never waits (`CMQTT_ERR_OUTBOX_FULL`
     * at once).
     */
    CMQTT_WHEN_FULL_BLOCK = 0,
    /**
     * `cmqtt_supervisor_publish` returns `CMQTT_ERR_OUTBOX_FULL` at once.
     */
    CMQTT_WHEN_FULL_ERROR = 1,
    /**
     * The oldest waiting publish is dropped: its ticket says `CMQTT_DELIVERY_DROPPED` and a
     * `CMQTT_SUPERVISOR_EVENT_DROPPED` event reports it.
     */
    CMQTT_WHEN_FULL_DROP_OLDEST = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum cmqtt_when_full cmqtt_when_full;
#else
typedef uint32_t cmqtt_when_full;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * An acquired MQTT client of the modem, index 0 or 1 (opaque). Create with
 * `cmqtt_client_acquire`; free with `cmqtt_client_free` (which disconnects if needed and
 * releases the index).
 */
typedef struct cmqtt_client cmqtt_client;

/**
 * The ticket of one publish (opaque), from `cmqtt_supervisor_publish`. Thread-safe; may
 * outlive its supervisor (it then keeps the status it had). Free with `cmqtt_delivery_free`.
 */
typedef struct cmqtt_delivery cmqtt_delivery;

/**
 * A received message (opaque): topic, payload and the index of the client that received it.
 */
typedef struct cmqtt_message cmqtt_message;

/**
 * A modem session (opaque): the serial port, its reader and dispatch threads, the model's
 * profile. Create with `cmqtt_modem_open` or `cmqtt_modem_open_with`; free with
 * `cmqtt_modem_free`.
 */
typedef struct cmqtt_modem cmqtt_modem;

/**
 * A list of strings returned by the library (opaque), e.g. by `cmqtt_modem_cert_list`.
 */
typedef struct cmqtt_string_list cmqtt_string_list;

/**
 * A supervised client (opaque): see `cmqtt_supervisor_new`. Free with
 * `cmqtt_supervisor_free`.
 */
typedef struct cmqtt_supervisor cmqtt_supervisor;

/**
 * The AT trace: called with every line sent and received (passwords replaced by
 * `"<redacted>"`; data sent after a `>` prompt shown as `<N bytes of data>`). `line` is valid
 * during the call only. Runs on whichever thread sent or received the line, while the library
 * holds its command lock: it must return quickly and only copy the line. Functions that would
 * talk to the modem, change callbacks or free a handle return `CMQTT_ERR_IN_CALLBACK` there.
 */
typedef void (*cmqtt_trace_cb)(void *userdata, cmqtt_direction direction, const char *line);

/**
 * Options of `cmqtt_modem_open_with`. Start from `cmqtt_modem_options_default()`.
 */
typedef struct {
    /**
     * `sizeof` this struct as the program was built: set by the `_default()` function, so
     * that later versions of the library can add fields without breaking it. Leave it as
     * set (a struct embedded in another is covered by the outer one's size).
     */
    uint32_t struct_size;
    /**
     * Baud rate (default 115200).
     */
    uint32_t baud;
    /**
     * A `cmqtt_model` value: `CMQTT_MODEL_AUTO` (the default) identifies the modem; any other
     * value forces that model's profile.
     */
    cmqtt_model model;
    /**
     * How long to keep sending `AT` until the modem answers, in ms (0 = default, 10 s).
     */
    uint32_t sync_timeout_ms;
    /**
     * Capacity of each event and message queue (0 = default, 1024; at most
     * `CMQTT_MAX_QUEUE_CAPACITY`, larger is `CMQTT_ERR_INVALID_ARGUMENT`).
     */
    uint32_t queue_capacity;
    /**
     * What a full queue drops: false = the oldest item (the default), true = the new one.
     * Overflows are reported as `CMQTT_EVENT_OVERFLOW`.
     */
    bool drop_newest;
    /**
     * The AT trace (NULL = none). See `cmqtt_trace_cb`.
     */
    cmqtt_trace_cb trace;
    /**
     * Passed to `trace`. Must stay valid until the modem and every client acquired from it are
     * freed.
     */
    void *trace_userdata;
} cmqtt_modem_options;

/**
 * A modem-level event, passed to a `cmqtt_event_cb`. Valid during the call only.
 */
typedef struct {
    /**
     * What happened.
     */
    cmqtt_event_kind kind;
    /**
     * The client index (0 or 1) concerned, or -1.
     */
    int32_t client;
    /**
     * The cause or code (see the kind), or -1.
     */
    int32_t code;
    /**
     * For `CMQTT_EVENT_OVERFLOW`: items dropped so far; 0 otherwise.
     */
    uint64_t dropped;
    /**
     * The line or detail (see the kind), or a short description. Never NULL.
     */
    const char *text;
} cmqtt_event;

/**
 * Modem-level event callback; runs on the library's dispatch thread (see the contract).
 */
typedef void (*cmqtt_event_cb)(void *userdata, const cmqtt_event *event);

/**
 * An SSL context (`AT+CSSLCFG`) for `cmqtt_modem_ssl_configure`. Start from
 * `cmqtt_ssl_config_default()` (everything unset) and set what you need; unset fields are not
 * sent.
 */
typedef struct {
    /**
     * `sizeof` this struct as the program was built: set by the `_default()` function, so
     * that later versions of the library can add fields without breaking it. Leave it as
     * set (a struct embedded in another is covered by the outer one's size).
     */
    uint32_t struct_size;
    /**
     * "sslversion": 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all; -1 = unset.
     */
    int32_t ssl_version;
    /**
     * "authmode": 0 none, 1 verify the server, 2 both, 3 client only; -1 = unset.
     */
    int32_t auth_mode;
    /**
     * "ignorelocaltime": 0 or 1; -1 = unset.
     */
    int32_t ignore_local_time;
    /**
     * "negotiatetime": handshake timeout, 10..300 s; -1 = unset.
     */
    int32_t negotiate_time_s;
    /**
     * "cacert": a file name in the modem's certificate store; NULL = unset.
     */
    const char *ca_cert;
    /**
     * "clientcert": a file name in the store; NULL = unset.
     */
    const char *client_cert;
    /**
     * "clientkey": a file name in the store; NULL = unset.
     */
    const char *client_key;
    /**
     * "enableSNI": 0 or 1; -1 = unset.
     */
    int32_t enable_sni;
} cmqtt_ssl_config;

/**
 * Options of `cmqtt_client_acquire_with`. Start from `cmqtt_client_options_default()`.
 */
typedef struct {
    /**
     * `sizeof` this struct as the program was built: set by the `_default()` function, so
     * that later versions of the library can add fields without breaking it. Leave it as
     * set (a struct embedded in another is covered by the outer one's size).
     */
    uint32_t struct_size;
    /**
     * The client id, 1..128 bytes, no `"` (required).
     */
    const char *client_id;
    /**
     * Connect to an SSL/TLS server.
     */
    bool tls;
    /**
     * MQTT version: 3 = 3.1, 4 = 3.1.1; 0 = the modem's default.
     */
    uint8_t version;
    /**
     * Whether the modem checks that topics and messages are UTF-8 (`AT+CMQTTCFG="checkUTF8"`):
     * 0 or 1; -1 = the modem's default (on).
     */
    int32_t check_utf8;
    /**
     * The modem's send/receive operation timeout (`AT+CMQTTCFG="optimeout"`), 20..120 s;
     * 0 = the modem's default.
     */
    uint32_t op_timeout_s;
    /**
     * The SSL context (0..9) for TLS; -1 = the modem's default (the client index).
     */
    int32_t ssl_ctx;
} cmqtt_client_options;

/**
 * Called on the dispatch thread for every message the client receives (while set, messages are
 * not queued for `cmqtt_client_receive`). `msg` is valid during the call only: copy what you
 * keep (or use `cmqtt_message_copy`).
 */
typedef void (*cmqtt_message_cb)(void *userdata, const cmqtt_message *msg);

/**
 * Called on the dispatch thread when the client's broker connection is lost
 * (`+CMQTTCONNLOST`); `cause`: 1 socket closed passively, 2 socket reset, 3 network closed.
 */
typedef void (*cmqtt_connection_lost_cb)(void *userdata, uint8_t client_index, uint8_t cause);

/**
 * A file for the modem's certificate store, uploaded (`AT+CCERTDOWN`) when it is missing.
 */
typedef struct {
    /**
     * The file name in the store (e.g. "ca.pem"; no '/').
     */
    const char *name;
    /**
     * Its content (PEM bytes).
     */
    const uint8_t *data;
    size_t data_len;
} cmqtt_cert_file;

/**
 * A topic filter subscribed after every connect.
 */
typedef struct {
    /**
     * The filter, NUL-terminated UTF-8, 1..1024 bytes.
     */
    const char *topic;
    /**
     * 0..2.
     */
    uint8_t qos;
} cmqtt_subscription;

/**
 * A supervisor event, passed to a `cmqtt_supervisor_event_cb`. Valid during the call only
 * (copy what you keep). Fields that do not apply to the kind are 0, -1 or NULL as stated.
 */
typedef struct {
    /**
     * What happened.
     */
    cmqtt_supervisor_event_kind kind;
    /**
     * STATE: the new state; otherwise `CMQTT_STATE_NONE`.
     */
    cmqtt_state state;
    /**
     * STATE (WAITING): failed attempts so far; RESTORED: the failed attempts it took;
     * ATTEMPT_FAILED: which attempt failed (from 1); otherwise 0.
     */
    uint32_t attempt;
    /**
     * STATE (WAITING): how long it waits, in ms; otherwise 0.
     */
    uint64_t delay_ms;
    /**
     * LOST: what broke; otherwise `CMQTT_LOSS_NONE`.
     */
    cmqtt_loss loss;
    /**
     * LOST with `CMQTT_LOSS_CONNECTION`: the `+CMQTTCONNLOST` cause; otherwise -1.
     */
    int32_t cause;
    /**
     * DROPPED, FAILED: the ticket id (`cmqtt_delivery_id`); otherwise 0.
     */
    uint64_t id;
    /**
     * A description (the error, the reason, the loss, the state). Never NULL.
     */
    const char *text;
    /**
     * MODEM: the modem event (as `cmqtt_modem_set_event_callback` would give it); otherwise
     * NULL.
     */
    const cmqtt_event *modem_event;
} cmqtt_supervisor_event;

/**
 * Called for every supervisor event; see `cmqtt_supervisor_set_callbacks` for the thread.
 * `event` and everything it points to are valid during the call only.
 */
typedef void (*cmqtt_supervisor_event_cb)(void *userdata, const cmqtt_supervisor_event *event);

/**
 * Everything a supervisor needs to build (and rebuild) the session. Start from
 * `cmqtt_supervisor_config_default()` and set the endpoint, `client.client_id` and `server`.
 * `cmqtt_supervisor_new` copies everything it needs: the struct, its strings and arrays may be
 * freed once it returns (except `modem.trace_userdata`, which must stay valid until the
 * supervisor is freed).
 */
typedef struct {
    /**
     * `sizeof` this struct as the program was built: set by the `_default()` function, so
     * that later versions of the library can add fields without breaking it. Leave it as
     * set (a struct embedded in another is covered by the outer one's size).
     */
    uint32_t struct_size;
    /**
     * A `cmqtt_endpoint` value (default `CMQTT_ENDPOINT_SERIAL`); it says which of the next
     * fields are used.
     */
    cmqtt_endpoint endpoint;
    /**
     * SERIAL: where the modem is, in the library's one endpoint grammar: a device path
     * ("/dev/ttyUSB2"), "tcp://HOST:PORT" / "socket://HOST:PORT" / "HOST:PORT" (a
     * serial-over-TCP bridge) or "usb:VID:PID[:SERIAL][:INTERFACE]" (required).
     */
    const char *port;
    /**
     * USB: vendor id (SIMCom: 0x1e0e) (required).
     */
    uint16_t usb_vid;
    /**
     * USB: product id (required).
     */
    uint16_t usb_pid;
    /**
     * USB: the device's serial number; NULL = any.
     */
    const char *usb_serial;
    /**
     * USB: the interface number of the AT port (0..255); -1 = the first port found.
     */
    int32_t usb_interface;
    /**
     * TCP: "host:port" of a serial-over-TCP bridge (required).
     */
    const char *tcp_address;
    /**
     * Modem options: `baud` (SERIAL and USB), forced `model`, `sync_timeout_ms`, queues, and the
     * AT `trace` (see `cmqtt_trace_cb`; it runs on the supervisor thread too).
     */
    cmqtt_modem_options modem;
    /**
     * The client index, 0 or 1.
     */
    uint8_t index;
    /**
     * The client: `client_id` (required), `tls`, MQTT `version`, `check_utf8`, `op_timeout_s`,
     * `ssl_ctx`; applied at every acquire.
     */
    cmqtt_client_options client;
    /**
     * The broker, "tcp://host:port" (also for TLS) (required).
     */
    const char *server;
    /**
     * Keepalive, 1..64800 s (default 60).
     */
    uint32_t keepalive_s;
    /**
     * Clean session (default true). With false the broker keeps the subscriptions and queued
     * messages of this client id across reconnects.
     */
    bool clean_session;
    /**
     * User name; NULL = none.
     */
    const char *username;
    /**
     * Password (needs a user name); NULL = none. Never traced nor shown in errors.
     */
    const char *password;
    /**
     * How long one connect waits for the broker, in ms (default 120000).
     */
    uint32_t connect_timeout_ms;
    /**
     * The will's topic; NULL = no will. Re-applied before every connect.
     */
    const char *will_topic;
    /**
     * The will's message (1..1024 bytes).
     */
    const uint8_t *will_message;
    size_t will_message_len;
    /**
     * The will's QoS, 0..2.
     */
    uint8_t will_qos;
    /**
     * The SSL context (0..9) configured from `ssl` before every acquire; -1 = none (default).
     * (Which context the client uses is `client.ssl_ctx`.)
     */
    int32_t ssl_ctx;
    /**
     * The settings of SSL context `ssl_ctx` (see `cmqtt_ssl_config`).
     */
    cmqtt_ssl_config ssl;
    /**
     * Certificate and key files uploaded to the modem when missing; NULL with 0 = none.
     */
    const cmqtt_cert_file *certs;
    size_t cert_count;
    /**
     * Topic filters subscribed after every connect; NULL with 0 = none (more can be added
     * with `cmqtt_supervisor_subscribe`).
     */
    const cmqtt_subscription *subscriptions;
    size_t subscription_count;
    /**
     * Reconnect pacing: the first delay in ms (default 500), doubling up to `backoff_max_ms`
     * (default 60000), each varied by +-`backoff_jitter` (0..1, default 0.25).
     */
    uint32_t backoff_initial_ms;
    uint32_t backoff_max_ms;
    double backoff_jitter;
    /**
     * Most publishes waiting in the outbox (default 1000; 0 is taken as 1).
     */
    size_t outbox_capacity;
    /**
     * A `cmqtt_when_full` value (default `CMQTT_WHEN_FULL_BLOCK`).
     */
    cmqtt_when_full when_full;
    /**
     * Keep the outbox in this file (created if missing; what it holds is sent first); NULL =
     * in memory only.
     */
    const char *outbox_path;
    /**
     * fsync the outbox file at every change (survives power loss; costs a disk flush each).
     */
    bool outbox_sync;
    /**
     * The modem's publish timeout, 60..180 s (default 60).
     */
    uint32_t pub_timeout_s;
    /**
     * Give a publish up (`CMQTT_DELIVERY_FAILED`) after this many failures that are not about
     * the connection (default 5).
     */
    uint32_t max_send_failures;
    /**
     * Capacity of the queue of received messages for `cmqtt_supervisor_receive` (default 4096).
     */
    uint32_t queue_capacity;
    /**
     * The callbacks, installed before the supervisor thread starts so that no event is missed
     * (see `cmqtt_supervisor_set_callbacks` for the threads and rules); NULL = none (default).
     */
    cmqtt_message_cb on_message;
    cmqtt_supervisor_event_cb on_event;
    /**
     * Passed to the callbacks.
     */
    void *userdata;
} cmqtt_supervisor_config;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Static text for a result (any value: unknown ones give "unknown cmqtt_result value").
 * Never NULL; never freed.
 */
const char *cmqtt_result_str(cmqtt_result result);

/**
 * The modem's numeric `<err>` (or unknown) code of the last failed call on this thread, or -1
 * when that failure carried none (or no call failed yet).
 */
int32_t cmqtt_last_modem_code(void);

/**
 * The full human text of the last failed call on this thread ("" when none): the command,
 * what the modem said and, where known, what to do about it. Passwords never appear in it.
 * Never NULL. Owned by the library: valid until the next failing call on this thread.
 */
const char *cmqtt_last_error_message(void);

/**
 * The library version, e.g. "0.1.0". Static; never NULL.
 */
const char *cmqtt_version(void);

/**
 * The default options: 115200 baud, model identified, default timeouts and queues, no trace.
 */
cmqtt_modem_options cmqtt_modem_options_default(void);

/**
 * Opens the serial device `port` (e.g. "/dev/ttyUSB2") at `baud`, synchronises with the modem
 * (`AT`), switches echo off and identifies the model. On success `*modem_out` is the new handle;
 * on failure it is NULL (`CMQTT_ERR_SERIAL` when the port cannot be opened, `CMQTT_ERR_TIMEOUT`
 * when nothing answers).
 */
cmqtt_result cmqtt_modem_open(const char *port, uint32_t baud, cmqtt_modem **modem_out);

/**
 * `cmqtt_modem_open` with options (trace callback, forced model, baud, timeouts, queues).
 */
cmqtt_result cmqtt_modem_open_with(const char *port,
                                   const cmqtt_modem_options *options,
                                   cmqtt_modem **modem_out);

/**
 * Frees the modem handle. NULL is a no-op (`CMQTT_OK`). The event callback is removed first
 * (and waited for, if it is running). Clients acquired from this modem stay usable: the session
 * (port and threads) ends when the modem and all its clients are freed. Returns
 * `CMQTT_ERR_IN_CALLBACK` (and frees nothing) when called from a callback. Freeing twice is
 * undefined behaviour, like free(3).
 */
cmqtt_result cmqtt_modem_free(cmqtt_modem *modem);

/**
 * Starts the MQTT service (`AT+CMQTTSTART`). A service that is already running counts as
 * success.
 */
cmqtt_result cmqtt_modem_start(cmqtt_modem *modem);

/**
 * Stops the MQTT service (`AT+CMQTTSTOP`); release the clients first (`CMQTT_ERR_CLIENT_NOT_RELEASED`).
 */
cmqtt_result cmqtt_modem_stop(cmqtt_modem *modem);

/**
 * The model family in use (identified at open or forced); `CMQTT_MODEL_AUTO` when `modem` is
 * NULL.
 */
cmqtt_model cmqtt_modem_model(const cmqtt_modem *modem);

/**
 * Static lower-case name of a model value: "a7600", "sim7600", "sim7672x", "auto", or
 * "unknown". Never NULL.
 */
const char *cmqtt_model_name(cmqtt_model model);

/**
 * What the modem answered to `AT+CGMM` at open (e.g. "A7600E-H"). Valid as long as the
 * handle; "" when `modem` is NULL. Never NULL.
 */
const char *cmqtt_modem_model_name(const cmqtt_modem *modem);

/**
 * The firmware revision (`AT+CGMR` at open). Valid as long as the handle; "" when `modem` is
 * NULL. Never NULL.
 */
const char *cmqtt_modem_firmware(const cmqtt_modem *modem);

/**
 * Sets (or, with `on_event` NULL, clears) the modem-level event callback: connection lost,
 * no network, modem restarted, malformed data, queue overflows, unsolicited lines. Without a
 * callback these events are queued (and the oldest dropped when the queue is full). When this
 * returns, the previous callback is not running (unless this is called from it) and will not
 * be called again.
 */
cmqtt_result cmqtt_modem_set_event_callback(cmqtt_modem *modem,
                                            void *userdata,
                                            cmqtt_event_cb on_event);

/**
 * An SSL context with every field unset.
 */
cmqtt_ssl_config cmqtt_ssl_config_default(void);

/**
 * Configures SSL context `ssl_ctx` (0..9): every set field of `config` is sent, in order; the
 * first failure stops. Use the context with `cmqtt_client_set_ssl_context` (or
 * `cmqtt_client_options.ssl_ctx`) and acquire the client with `tls` true.
 */
cmqtt_result cmqtt_modem_ssl_configure(cmqtt_modem *modem,
                                       uint8_t ssl_ctx,
                                       const cmqtt_ssl_config *config);

/**
 * Stores a certificate or key (PEM bytes) in the modem's store as `name` (`AT+CCERTDOWN`).
 */
cmqtt_result cmqtt_modem_cert_upload(cmqtt_modem *modem,
                                     const char *name,
                                     const uint8_t *data,
                                     size_t data_len);

/**
 * The files in the modem's certificate store (`AT+CCERTLIST`), as a new list in `*list_out`
 * (free it with `cmqtt_string_list_free`; NULL on failure).
 */
cmqtt_result cmqtt_modem_cert_list(cmqtt_modem *modem, cmqtt_string_list **list_out);

/**
 * Deletes `name` from the modem's certificate store (`AT+CCERTDELE`).
 */
cmqtt_result cmqtt_modem_cert_delete(cmqtt_modem *modem, const char *name);

/**
 * Runs one raw AT command line (e.g. "AT+CPSI?") for which the library has no function, waits
 * up to `timeout_ms` for its final result, and returns its information lines in `*lines_out`
 * (free with `cmqtt_string_list_free`; NULL on failure).
 */
cmqtt_result cmqtt_modem_command(cmqtt_modem *modem,
                                 const char *line,
                                 uint32_t timeout_ms,
                                 cmqtt_string_list **lines_out);

/**
 * Signal quality (`AT+CSQ`): `*rssi_out` 0..31 (99 unknown), `*ber_out` 0..7 (99 unknown).
 */
cmqtt_result cmqtt_modem_signal_quality(cmqtt_modem *modem, uint8_t *rssi_out, uint8_t *ber_out);

/**
 * Packet-domain registration (`AT+CGREG?` `<stat>`): 1 registered (home), 5 roaming, ...
 */
cmqtt_result cmqtt_modem_registration(cmqtt_modem *modem, uint8_t *stat_out);

/**
 * Acquires client `index` (0 or 1) with `client_id` (1..128 bytes, no `"`); `tls` selects an
 * SSL/TLS server (configure the SSL context first). On success `*client_out` is the new handle;
 * on failure NULL.
 */
cmqtt_result cmqtt_client_acquire(cmqtt_modem *modem,
                                  uint8_t index,
                                  const char *client_id,
                                  bool tls,
                                  cmqtt_client **client_out);

/**
 * Default client options: no client id (set one), plain TCP, the modem's defaults.
 */
cmqtt_client_options cmqtt_client_options_default(void);

/**
 * `cmqtt_client_acquire` with options (MQTT version, UTF-8 check, operation timeout, SSL
 * context). If configuring fails, the index is released again and `*client_out` is NULL.
 */
cmqtt_result cmqtt_client_acquire_with(cmqtt_modem *modem,
                                       uint8_t index,
                                       const cmqtt_client_options *options,
                                       cmqtt_client **client_out);

/**
 * Frees the client: removes its callbacks (waiting for a running one to return), disconnects
 * if connected, releases the index (`AT+CMQTTREL`). NULL is a no-op (`CMQTT_OK`). The handle is
 * freed even when disconnecting or releasing fails (the result says so); the exception is a
 * call from a callback, which returns `CMQTT_ERR_IN_CALLBACK` and frees nothing. Freeing twice
 * is undefined behaviour, like free(3).
 */
cmqtt_result cmqtt_client_free(cmqtt_client *client);

/**
 * The client's index (0 or 1); -1 when `client` is NULL.
 */
int32_t cmqtt_client_index(const cmqtt_client *client);

/**
 * Whether the client is connected as far as the library knows (connect, disconnect,
 * connection lost, no network and modem restarts update it); false when `client` is NULL.
 */
bool cmqtt_client_is_connected(const cmqtt_client *client);

/**
 * `AT+CMQTTCFG="checkUTF8"`: whether the modem checks topics and messages for UTF-8.
 */
cmqtt_result cmqtt_client_set_check_utf8(cmqtt_client *client, bool on);

/**
 * `AT+CMQTTCFG="optimeout"`: the modem's send/receive operation timeout, 20..120 s.
 */
cmqtt_result cmqtt_client_set_op_timeout(cmqtt_client *client, uint32_t seconds);

/**
 * `AT+CMQTTCFG="version"`: 3 (MQTT 3.1) or 4 (MQTT 3.1.1), on models that set it there
 * (SIM7600 takes it at acquire: use `cmqtt_client_acquire_with`).
 */
cmqtt_result cmqtt_client_set_version(cmqtt_client *client, uint8_t version);

/**
 * `AT+CMQTTSSLCFG`: the SSL context (0..9) this client's TLS connection uses.
 */
cmqtt_result cmqtt_client_set_ssl_context(cmqtt_client *client, uint8_t ssl_ctx);

/**
 * Sets the will (topic, message bytes, QoS 0..2), sent with the next connect. Both are checked
 * before either is sent.
 */
cmqtt_result cmqtt_client_set_will(cmqtt_client *client,
                                   const char *topic,
                                   const uint8_t *message,
                                   size_t message_len,
                                   uint8_t qos);

/**
 * Connects to `server` ("tcp://host:port"; also for TLS, chosen at acquire) with keepalive
 * 1..64800 s; `username`/`password` may be NULL. Waits up to 120 s for the broker. The password
 * never appears in traces or error messages.
 */
cmqtt_result cmqtt_client_connect(cmqtt_client *client,
                                  const char *server,
                                  uint16_t keepalive_s,
                                  bool clean_session,
                                  const char *username,
                                  const char *password);

/**
 * Disconnects (`AT+CMQTTDISC`); `timeout_s` is 0 (the model's default) or 60..180.
 */
cmqtt_result cmqtt_client_disconnect(cmqtt_client *client, uint32_t timeout_s);

/**
 * Publishes `payload_len` bytes (any bytes; `payload` may be NULL when `payload_len` is 0) to
 * `topic` with QoS 0..2 and waits for the modem's result: for QoS 1 and 2 that is the broker's
 * acknowledgement. `timeout_s` is the modem's publish timeout, 60..180. Every argument is
 * checked before a byte is sent (`CMQTT_ERR_INVALID_ARGUMENT`); `CMQTT_ERR_NOT_CONNECTED` when
 * the client is not connected.
 */
cmqtt_result cmqtt_client_publish(cmqtt_client *client,
                                  const char *topic,
                                  const uint8_t *payload,
                                  size_t payload_len,
                                  uint8_t qos,
                                  bool retain,
                                  uint32_t timeout_s);

/**
 * Subscribes to one topic filter with QoS 0..2.
 */
cmqtt_result cmqtt_client_subscribe(cmqtt_client *client, const char *topic, uint8_t qos);

/**
 * Subscribes to `count` topic filters at once, `topics[i]` with QoS `qos[i]` (one SUBSCRIBE
 * packet where the firmware allows it). `count` must be at least 1.
 */
cmqtt_result cmqtt_client_subscribe_many(cmqtt_client *client,
                                         const char *const *topics,
                                         const uint8_t *qos,
                                         size_t count);

/**
 * Unsubscribes from one topic filter.
 */
cmqtt_result cmqtt_client_unsubscribe(cmqtt_client *client, const char *topic);

/**
 * Unsubscribes from `count` (at least 1) topic filters at once.
 */
cmqtt_result cmqtt_client_unsubscribe_many(cmqtt_client *client,
                                           const char *const *topics,
                                           size_t count);

/**
 * Sets the client's callbacks; either may be NULL. NULL `on_message` means messages are queued
 * for `cmqtt_client_receive` again; both NULL clears everything. When this returns, the
 * previous callbacks are not running (unless this is called from one of them: then the change
 * applies from the next call) and will not be called again, so their userdata may be freed.
 */
cmqtt_result cmqtt_client_set_callbacks(cmqtt_client *client,
                                        void *userdata,
                                        cmqtt_message_cb on_message,
                                        cmqtt_connection_lost_cb on_connection_lost);

/**
 * Waits up to `timeout_ms` (0 = just look) for the next received message and returns it in
 * `*msg_out`, owned by the caller: free it with `cmqtt_message_free`. `CMQTT_ERR_TIMEOUT` (and
 * `*msg_out` NULL) when none came; `CMQTT_ERR_CLOSED` when the session has ended. Messages go
 * to the message callback instead while one is set.
 */
cmqtt_result cmqtt_client_receive(cmqtt_client *client,
                                  uint32_t timeout_ms,
                                  cmqtt_message **msg_out);

/**
 * The topic: NUL-terminated, and its length (without the NUL) in `*len_out` if `len_out` is not
 * NULL. The bytes are exactly what the broker sent (UTF-8 unless the client's UTF-8 check is
 * off). Valid as long as the message. NULL (and `*len_out` = 0) when `msg` is NULL.
 */
const char *cmqtt_message_topic(const cmqtt_message *msg, size_t *len_out);

/**
 * The payload (any bytes) and its length in `*len_out` if `len_out` is not NULL. A NUL that is
 * not counted follows the bytes, so a text payload can be printed as a C string. Never NULL for
 * a valid message (an empty payload is ""). Valid as long as the message. NULL (and
 * `*len_out` = 0) when `msg` is NULL.
 */
const uint8_t *cmqtt_message_payload(const cmqtt_message *msg, size_t *len_out);

/**
 * The index (0 or 1) of the client that received the message; -1 when `msg` is NULL.
 */
int32_t cmqtt_message_client(const cmqtt_message *msg);

/**
 * An owned copy of a message (e.g. to keep one passed to a callback beyond the call). Free it
 * with `cmqtt_message_free`. NULL when `msg` is NULL.
 */
cmqtt_message *cmqtt_message_copy(const cmqtt_message *msg);

/**
 * Frees a message obtained from `cmqtt_client_receive` or `cmqtt_message_copy`. NULL is a
 * no-op. The message passed to a callback belongs to the library: freeing it there is
 * detected and ignored. Freeing a message twice is undefined behaviour, like free(3).
 */
void cmqtt_message_free(cmqtt_message *msg);

/**
 * The number of strings; 0 when `list` is NULL.
 */
size_t cmqtt_string_list_len(const cmqtt_string_list *list);

/**
 * String `i` (NUL-terminated, valid as long as the list); NULL when `list` is NULL or `i` is
 * out of range.
 */
const char *cmqtt_string_list_get(const cmqtt_string_list *list, size_t i);

/**
 * Frees a list. NULL is a no-op.
 */
void cmqtt_string_list_free(cmqtt_string_list *list);

/**
 * The defaults: a SERIAL endpoint at 115200 baud (set `port`), client index 0, keepalive 60 s,
 * clean session, no will, no TLS, backoff 0.5 s..60 s with 25 % jitter, an in-memory outbox of
 * 1000 that blocks when full, publish timeout 60 s. Set at least the endpoint,
 * `client.client_id` and `server`.
 */
cmqtt_supervisor_config cmqtt_supervisor_config_default(void);

/**
 * Starts a supervisor for `config` and returns it in `*supervisor_out`. It returns at once:
 * the supervisor thread opens the port, starts the service, configures (SSL context, missing
 * certificates, will), acquires, connects and subscribes in the background, and does it all
 * again after every fault, with exponential backoff and jitter (see
 * `cmqtt_supervisor_wait_connected` and the events). Publishes are queued in the outbox until
 * they can be sent, in order.
 *
 * Fails (and starts nothing) for a configuration that can never work: a required field NULL
 * (`CMQTT_ERR_NULL_ARGUMENT`), a string that is not UTF-8, an enum value out of range or any
 * setting outside what the spec allows (client id, server, keepalive, will, QoS, publish
 * timeout, backoff: `CMQTT_ERR_INVALID_ARGUMENT`), an outbox file that cannot be opened
 * (`CMQTT_ERR_IO`) or is not an outbox file (`CMQTT_ERR_INVALID_ARGUMENT`). An unreachable
 * modem or broker is not a failure here: the supervisor keeps trying.
 */
cmqtt_result cmqtt_supervisor_new(const cmqtt_supervisor_config *config,
                                  cmqtt_supervisor **supervisor_out);

/**
 * Stops and frees the supervisor: disconnects cleanly when connected, releases the client,
 * closes the port and ends the supervisor thread (waiting for it: up to the modem's answer to
 * the disconnect). Publishes still waiting stay in the outbox file when one is configured (the
 * next supervisor on that file sends them); their tickets stay `CMQTT_DELIVERY_QUEUED`.
 * The callbacks run until the thread has ended (the final `CMQTT_STATE_STOPPED` event runs on
 * the calling thread); functions they call on this supervisor meanwhile return
 * `CMQTT_ERR_CLOSED`. When this returns they are not running and will not be called again.
 * NULL is a no-op. Returns `CMQTT_ERR_IN_CALLBACK` (and frees nothing) when called from a
 * callback. Freeing twice is undefined behaviour, like free(3).
 */
cmqtt_result cmqtt_supervisor_free(cmqtt_supervisor *supervisor);

/**
 * Sets the supervisor's callbacks; either may be NULL.
 *
 * `on_message` runs on the modem's dispatch thread for every received message (of every
 * reconnect), instead of queueing it for `cmqtt_supervisor_receive`; NULL queues again. The
 * message is lent for the call (see the contract).
 *
 * `on_event` runs for every `cmqtt_supervisor_event`, on the thread that caused it: state
 * changes, losses, restores, failed attempts and failed publishes on the supervisor thread;
 * `CMQTT_SUPERVISOR_EVENT_DROPPED` on the thread whose publish made it (inside
 * `cmqtt_supervisor_publish`); `CMQTT_SUPERVISOR_EVENT_MODEM` on the modem's dispatch thread;
 * the final `CMQTT_STATE_STOPPED` on the thread calling `cmqtt_supervisor_free`. While it runs
 * on the supervisor thread supervision waits: keep it short. It may call any function
 * (publish included: from the supervisor thread a publish never waits for room in the outbox),
 * except the _free functions and waiting ones (`cmqtt_supervisor_wait_connected`,
 * `cmqtt_supervisor_flush` and `cmqtt_delivery_wait` with a timeout > 0 return
 * `CMQTT_ERR_IN_CALLBACK`: the supervisor would wait for itself). A publish it makes that drops
 * a message calls it again, nested, with the DROPPED event. Without an event callback, events
 * are not delivered to C.
 *
 * When this returns, the previous callbacks are not running and will not be called again
 * (unless this is called from one of them: then the change applies from the next call).
 */
cmqtt_result cmqtt_supervisor_set_callbacks(cmqtt_supervisor *supervisor,
                                            void *userdata,
                                            cmqtt_message_cb on_message,
                                            cmqtt_supervisor_event_cb on_event);

/**
 * Static lower-case name of a state: "opening", "starting", "connecting", "connected",
 * "waiting", "stopped", "none", or "unknown". Never NULL.
 */
const char *cmqtt_state_name(cmqtt_state state);

/**
 * The current state; `CMQTT_STATE_NONE` when `supervisor` is NULL, `CMQTT_STATE_STOPPED`
 * while it is being freed.
 */
cmqtt_state cmqtt_supervisor_state(const cmqtt_supervisor *supervisor);

/**
 * Waits up to `timeout_ms` (0 = just look) until the client is connected: `CMQTT_OK`, or
 * `CMQTT_ERR_TIMEOUT` (the last error says the state it is in). `CMQTT_ERR_IN_CALLBACK` from
 * the event callback with a timeout > 0.
 */
cmqtt_result cmqtt_supervisor_wait_connected(cmqtt_supervisor *supervisor, uint32_t timeout_ms);

/**
 * Publishes waiting in the outbox (queued, or being sent); 0 when `supervisor` is NULL.
 */
size_t cmqtt_supervisor_outbox_len(const cmqtt_supervisor *supervisor);

/**
 * Waits up to `timeout_ms` until the outbox is empty (every publish delivered, failed or
 * dropped): `CMQTT_OK`, or `CMQTT_ERR_TIMEOUT` (the last error says how many wait).
 * `CMQTT_ERR_IN_CALLBACK` from the event callback with a timeout > 0.
 */
cmqtt_result cmqtt_supervisor_flush(cmqtt_supervisor *supervisor, uint32_t timeout_ms);

/**
 * Queues a publish of `payload_len` bytes (any bytes; `payload` may be NULL when `payload_len`
 * is 0) to `topic` with QoS 0..2: it is sent, in order, as soon as the client is connected,
 * and again after a reconnect if the connection broke before the modem confirmed it (so QoS 1
 * may arrive twice; QoS 0 is never sent twice: an interrupted one fails). Arguments that can
 * never be sent are refused at once (`CMQTT_ERR_INVALID_ARGUMENT`). A full outbox follows
 * `when_full`: waits up to `pub_timeout_s` for room (then `CMQTT_ERR_OUTBOX_FULL`; never
 * waits from a callback), `CMQTT_ERR_OUTBOX_FULL` at once, or drops the oldest publish.
 *
 * `delivery_out` is optional: when not NULL, `*delivery_out` is the publish's ticket (NULL on
 * failure); free it with `cmqtt_delivery_free`. Tickets are not needed for the publish to be
 * sent.
 */
cmqtt_result cmqtt_supervisor_publish(cmqtt_supervisor *supervisor,
                                      const char *topic,
                                      const uint8_t *payload,
                                      size_t payload_len,
                                      uint8_t qos,
                                      bool retain,
                                      cmqtt_delivery **delivery_out);

/**
 * Adds a subscription (topic filter, QoS 0..2): applied now if connected, and after every
 * reconnect. Returns once it is recorded (the SUBSCRIBE itself is made by the supervisor
 * thread; a failure there counts as a connection problem and is retried).
 */
cmqtt_result cmqtt_supervisor_subscribe(cmqtt_supervisor *supervisor,
                                        const char *topic,
                                        uint8_t qos);

/**
 * Waits up to `timeout_ms` (0 = just look) for the next received message (from any
 * connection of the supervised client) and returns it in `*msg_out`, owned by the caller: free
 * it with `cmqtt_message_free`. `CMQTT_ERR_TIMEOUT` (and `*msg_out` NULL) when none came.
 * Messages go to the message callback instead while one is set.
 */
cmqtt_result cmqtt_supervisor_receive(cmqtt_supervisor *supervisor,
                                      uint32_t timeout_ms,
                                      cmqtt_message **msg_out);

/**
 * The ticket's id: increasing from 1 in publish order, kept across restarts when the outbox
 * is persisted; the `id` of DROPPED and FAILED events. 0 when `delivery` is NULL.
 */
uint64_t cmqtt_delivery_id(const cmqtt_delivery *delivery);

/**
 * Where the publish stands now (never waits); `CMQTT_DELIVERY_NONE` when `delivery` is NULL.
 */
cmqtt_delivery_state cmqtt_delivery_status(const cmqtt_delivery *delivery);

/**
 * Waits up to `timeout_ms` (0 = just look) until the publish is no longer queued: `CMQTT_OK`
 * when delivered, `CMQTT_ERR_DELIVERY_FAILED` (the last error says why),
 * `CMQTT_ERR_DELIVERY_DROPPED`, or `CMQTT_ERR_TIMEOUT` while it is still queued.
 * `CMQTT_ERR_IN_CALLBACK` from the supervisor's event callback with a timeout > 0.
 */
cmqtt_result cmqtt_delivery_wait(const cmqtt_delivery *delivery, uint32_t timeout_ms);

/**
 * Frees a ticket (the publish itself goes on). NULL is a no-op. Freeing twice is undefined
 * behaviour, like free(3).
 */
void cmqtt_delivery_free(cmqtt_delivery *delivery);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CMQTT_H */
