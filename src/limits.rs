//! Every bound the device (and the engine) lives by, in one place.
//!
//! A Raspberry Pi Zero has 512 MiB and an OpenWrt router often 128 MiB: nothing we do may grow without limit
//! from network input. Each constant here is the single source of a buffer size, queue depth, timeout or cap;
//! code refers to the name, never to a bare number. Memory per open stream on the device is roughly
//! `TLS_READ_RECORD_LEN + TLS_WRITE_RECORD_LEN + 2 * PIPE_LEN` (about 40 KiB; a `forward` stream's splice to its
//! local service adds no buffer of its own, `transport::tls_splice`), so an agent at [`MAX_AGENT_STREAMS`] grows
//! by about 7 MiB: under the 8 MiB a 128 MiB router can spare (`tests/fault_many_streams.rs` holds it there).

use std::time::Duration;

/// Largest rstream/WebTTY protobuf frame on a byte stream (upstream: "framed packet too large").
pub const MAX_FRAME_LEN: usize = 65_535;

/// TLS read record buffer: a full TLS 1.3 record (16 KiB plaintext + header, tag and padding). It cannot be
/// smaller: the engine chooses the size of what it sends, rustls sends full 16 KiB records, and rustls servers do
/// not negotiate `max_fragment_length`.
pub const TLS_READ_RECORD_LEN: usize = 16_640;
/// TLS write record buffer: 8 KiB of plaintext per record plus embedded-tls's 128 bytes of record overhead. We
/// choose what we send, and any record up to 16 KiB is valid TLS: half the largest saves 8 KiB per stream (4 KiB
/// records cost measurably more agent CPU per byte sent, for 4 KiB less). Never more than 16 KiB + 128, which
/// peers refuse as oversized.
pub const TLS_WRITE_RECORD_LEN: usize = 8192 + 128;
/// Capacity of each in-memory pipe between a TLS session and its user (one per direction): 8 KiB, half a full
/// record, since the record buffers already hold one each way. Smaller pipes mean more wakeups per byte; the
/// splice of a `forward` stream runs on the TLS thread so that those stay on one thread.
pub const PIPE_LEN: usize = 8192;
/// Largest certificate chain (all DER certificates the engine sends) the TLS client keeps for the handshake
/// signature check.
pub const TLS_MAX_CERT_CHAIN_LEN: usize = 8192;
/// Most certificates read from one CA file (each is a trust anchor tried in turn).
pub const MAX_CA_CERTS: usize = 16;
/// Engine certificate chains the TLS client remembers as verified (see `transport::verified_chains`).
pub const VERIFIED_CHAIN_CACHE_LEN: usize = 4;
/// How long a verified chain is trusted without checking its signatures again (the handshake signature is
/// always checked); also how long after its `notAfter` an expiring certificate may still be accepted.
pub const VERIFIED_CHAIN_TTL: Duration = Duration::from_secs(60);
/// Stack of the one thread that runs all TLS client sessions (session state lives in heap-allocated tasks).
pub const TLS_THREAD_STACK: usize = 1024 * 1024;
/// Session start requests queued for the TLS thread before callers wait.
pub const TLS_THREAD_JOB_QUEUE: usize = 64;
/// Buffer used by the byte-copy loops (`dial`, HTTP bodies, file transfer, the engine's splice); a `forward`
/// stream needs none (`transport::tls_splice` moves bytes through its TLS session's pipes).
pub const COPY_BUF_LEN: usize = 16_384;

/// Largest HTTP request/response header block we accept.
pub const MAX_HTTP_HEAD_LEN: usize = 16_384;
/// Most header lines in one HTTP message.
pub const MAX_HTTP_HEADERS: usize = 64;
/// Largest HTTP body we buffer in memory (JSON API bodies, PROPFIND/PROPPATCH/LOCK XML). Streams are not buffered.
pub const MAX_HTTP_BUFFERED_BODY: usize = 1 << 20;
/// An HTTP peer that sends nothing for this long is dropped (slowloris guard).
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed to receive a complete request head.
pub const HTTP_HEAD_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest chunk-size line (hex size plus chunk extensions) in a chunked HTTP body.
pub const MAX_HTTP_CHUNK_LINE_LEN: usize = 1024;
/// Unread request-body bytes a server discards to keep a connection alive after answering early (a client
/// likewise drains this much of an unread response before reusing a connection); beyond it the connection closes.
pub const HTTP_DRAIN_MAX: u64 = 64 * 1024;
/// After answering a request whose body was left unread, the server reads and discards at most this many bytes
/// before closing, so the peer sees the response instead of a TCP reset ("lingering close").
pub const HTTP_LINGER_MAX: u64 = 1 << 20;
/// Upper bound on the lingering close described at [`HTTP_LINGER_MAX`].
pub const HTTP_LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest WebSocket message (a WebTTY frame fits in 64 KiB).
pub const MAX_WS_MESSAGE_LEN: usize = 64 * 1024;
/// Bytes of child stdout/stderr read per WebTTY `Data` message.
pub const EXEC_CHUNK_LEN: usize = 16 * 1024;
/// Concurrent WebTTY sessions per server (further Opens get a clear Error).
pub const MAX_WEBTTY_SESSIONS: usize = 32;
/// Supplementary groups a session user may have (Linux's own `NGROUPS_MAX`); a user in more is refused.
pub const MAX_SESSION_GROUPS: usize = 65_536;
/// Server-side cap on one exec session's lifetime unless the client asks for less.
pub const EXEC_MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Connections (authenticated or not) a WebTTY server keeps open at once. A newcomer to a full server closes the
/// oldest one that has not had a request admitted yet (`webtty::admission`); with none such, it waits in the accept
/// queue.
pub const MAX_WEBTTY_CONNECTIONS: usize = 4 * MAX_WEBTTY_SESSIONS;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// After SIGHUP/SIGTERM, a session's process group gets this long before SIGKILL.
pub const WEBTTY_KILL_GRACE: Duration = Duration::from_secs(2);
/// After a session's child exits, output is drained until its pipes/PTY stay silent this long (background
/// jobs may hold them open), then the rest of the group is killed and `Close` is sent.
pub const WEBTTY_EXIT_DRAIN_IDLE: Duration = Duration::from_millis(250);
/// Deadline for a client's `Open` after the WebSocket is up.
pub const WEBTTY_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for the WebSocket closing handshake at the end of a session.
pub const WS_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes tungstenite reads from the socket at a time (its eagerly allocated read buffer).
pub const WS_READ_BUFFER_LEN: usize = 16 * 1024;
/// Client-side cap on captured stdout+stderr of `webtty exec` (beyond it the output is truncated and flagged).
pub const EXEC_OUTPUT_CAP: usize = 64 * 1024 * 1024;

/// Default largest WebDAV upload (`--fs-max-upload-size`).
pub const DEFAULT_FS_MAX_UPLOAD: u64 = 64 * 1024 * 1024;
/// Most WebDAV locks held at once.
pub const MAX_WEBDAV_LOCKS: usize = 1024;
/// Lock timeout granted when a WebDAV client asks for none (or for `Infinite`).
pub const WEBDAV_LOCK_DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest lock timeout granted; clients refresh their locks.
pub const WEBDAV_LOCK_MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Largest `<owner>` element kept with a lock (bytes of XML).
pub const MAX_WEBDAV_LOCK_OWNER_LEN: usize = 1024;
/// Most dead properties (PROPPATCH) kept in memory over all resources; beyond it PROPPATCH answers 507.
pub const MAX_WEBDAV_DEAD_PROPS: usize = 4096;
/// Largest value of one dead property (bytes of XML).
pub const MAX_WEBDAV_DEAD_PROP_LEN: usize = 4096;
/// Deepest directory nesting a WebDAV COPY or a MOVE across filesystems walks.
pub const MAX_WEBDAV_TREE_DEPTH: usize = 64;
/// Failed members listed in one 207 answer to COPY/MOVE/DELETE (the rest are counted).
pub const MAX_WEBDAV_MULTISTATUS_ERRORS: usize = 64;
/// gzip-encoded GET answers streaming at once (each deflate state takes about 300 KiB); further requests get
/// the identity encoding.
pub const MAX_GZIP_STREAMS: usize = 2;
/// Files smaller than this are never gzip-encoded (the header costs more than it saves).
pub const GZIP_MIN_LEN: u64 = 256;
/// Deepest element nesting accepted in WebDAV XML bodies.
pub const MAX_XML_DEPTH: usize = 32;
/// Most namespace declarations in scope at once in WebDAV XML bodies.
pub const MAX_XML_NAMESPACES: usize = 64;
/// Buffer of the WebDAV client's streaming XML reader: the largest single XML token (tag or text) it accepts.
pub const WEBDAV_XML_BUF_LEN: usize = 64 * 1024;
/// Most entries the WebDAV client returns for one directory listing.
pub const MAX_WEBDAV_LIST_ENTRIES: usize = 100_000;
/// Bytes of an error body the WebDAV client quotes in its error message.
pub const WEBDAV_ERROR_BODY_LEN: usize = 4096;

/// Heartbeat period on control channels (and WebTTY sessions that ask for it); the interval the agent asks for
/// in its liveness policy (protocol 1.4), and the engine's own heartbeat period toward 1.3 peers.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A legacy (1.3) control channel silent for this long is dead (3 missed heartbeats). A negotiated channel uses
/// the engine's timeout instead: 3 intervals, at most 15 minutes (`proto::rstream::MAX_HEARTBEAT_TIMEOUT_MS`).
pub const HEARTBEAT_DEAD_AFTER: Duration = Duration::from_secs(15);
/// Deadline for the agent's leg of a stream to arrive after `ProxyConnReq` (for a client that waits for the
/// agent's `ProxyConnRsp` too, for both); on the agent, the bound of readying the local side and of the dial.
pub const PROXY_LEG_DEADLINE: Duration = Duration::from_secs(10);
/// TCP connect + TLS handshake deadline when dialing the engine.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a resolved engine address is reused before the name is looked up again.
pub const DNS_CACHE_TTL: Duration = Duration::from_secs(30);
/// Deadline for the first framed message on a new engine connection.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline of a DNS lookup of the engine host (doctor).
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one engine REST API call (connect, TLS, request, response), as upstream's client.
pub const API_TIMEOUT: Duration = Duration::from_secs(5);

/// Tunnels one control channel may register.
pub const MAX_TUNNELS_PER_CLIENT: usize = 64;
/// Streams (client ⇄ agent splices) open at once through one engine.
pub const MAX_ENGINE_STREAMS: usize = 4096;
/// Outgoing control-channel messages queued per client before the engine treats it as stuck.
pub const CONTROL_QUEUE_DEPTH: usize = 256;
/// Pending legs (ProxyConnReq sent, ProxyReq not yet arrived) per tunnel.
pub const MAX_PENDING_LEGS_PER_TUNNEL: usize = 256;
/// Engine events (`/api/sse`, `/api/websocket`): events queued per subscriber. The queue holds pointers to
/// events shared by every subscriber; a subscriber whose queue is full has stopped reading and is dropped with a
/// clear close rather than buffered. An event is at most one tunnel's JSON (its labels fit one control frame,
/// [`MAX_FRAME_LEN`]), so one subscriber retains at most this many of them.
pub const EVENT_QUEUE_DEPTH: usize = 64;
/// Engine events: subscribers at once; the next one is refused with 503.
pub const MAX_EVENT_SUBSCRIBERS: usize = 64;
/// Engine events: an idle SSE stream gets a `: heartbeat` comment (a WebSocket a ping) this often, so proxies
/// keep it open and a dead subscriber is noticed.
pub const EVENT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Engine events: longest wait for one write to a subscriber before it counts as stalled and is dropped.
pub const EVENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Engine events: largest message a WebSocket subscriber may send (pings, a close); its events are outgoing.
pub const EVENT_WS_MAX_INCOMING: usize = 4096;
/// `rstream events`: largest event accepted from the engine (one SSE event or WebSocket message); `state.initial`
/// lists every tunnel, each at most one control frame of labels, so this leaves room for hundreds.
pub const EVENT_CLIENT_MAX_LEN: usize = 8 << 20;
/// `rstream events` over SSE: a stream silent this long (no event, no heartbeat comment) counts as dead; three
/// engine heartbeats ([`EVENT_HEARTBEAT_INTERVAL`]).
pub const EVENT_CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// `rstream events` over WebSocket: a ping is sent after this much silence (upstream: 20 s).
pub const EVENT_CLIENT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// `rstream events` over WebSocket: silence (not even a pong) past this drops the connection (upstream: 90 s).
pub const EVENT_CLIENT_WS_TIMEOUT: Duration = Duration::from_secs(90);
/// `rstream events`: longest wait between reconnect attempts to the engine.
pub const EVENT_CLIENT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// `rstream events --forward-to`: one POST (connect, send, answer) must finish within this (upstream: 10 s).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// `rstream events --forward-to`: attempts per event before it is reported as lost and skipped.
pub const FORWARD_ATTEMPTS: u32 = 4;
/// `rstream events --forward-to`: the wait before the first retry; it doubles per attempt.
pub const FORWARD_RETRY_INITIAL: Duration = Duration::from_millis(500);
/// `rstream events --forward-to`: most bytes of a receiver's error answer read and shown (upstream: 4 KiB).
pub const FORWARD_ERROR_BODY_MAX: usize = 4096;

/// Streams one device agent serves at once (each holds a TLS leg, its pipes and a local connection, about
/// 40 KiB of buffers); further `ProxyConnReq`s are refused with 503 instead of queued.
pub const MAX_AGENT_STREAMS: usize = 128;

/// Proxy legs the agent keeps handshaken ahead of time during a burst of streams (see `agent::leg_pool`); each
/// idle one holds a TLS session (about 40 KiB: two record buffers and two pipes).
pub const LEG_POOL_SIZE: usize = 4;
/// How long a pre-dialed leg waits for a stream before it is closed; also the gap between two streams that
/// still counts as a burst. Well below [`FIRST_MESSAGE_TIMEOUT`], after which an engine drops a silent
/// connection.
pub const LEG_POOL_MAX_IDLE: Duration = Duration::from_secs(3);

/// First reconnect delay after a lost control channel.
pub const RECONNECT_INITIAL: Duration = Duration::from_millis(250);
/// Upper bound of the reconnect backoff.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// MCP server: blocking threads that run tool calls (each network tool runs `smol::block_on` on one of them);
/// further calls wait for a free thread.
pub const MCP_MAX_TOOL_THREADS: usize = 16;
/// MCP server: how long tool calls still running when the client closes stdin may delay the exit.
pub const MCP_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// MCP `rstream_webtty_exec`: default deadline for one remote command when the agent gives none.
pub const MCP_EXEC_DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// MCP `rstream_webtty_list`: longest `wait_seconds` for a matching server to come online (on the event stream).
pub const MCP_LIST_MAX_WAIT: Duration = Duration::from_secs(120);
/// MCP `rstream_webtty_exec`: stdout and stderr returned to the agent, each (beyond it: truncated and flagged).
pub const MCP_EXEC_OUTPUT_CAP: usize = 4 * 1024 * 1024;
/// MCP `rstream_webtty_fs_read`: bytes returned when the agent gives no `max_bytes`.
pub const MCP_FS_READ_DEFAULT_MAX: u64 = 1024 * 1024;
/// MCP `rstream_webtty_fs_read`: largest `max_bytes` an agent may ask for (the result carries the content twice,
/// as text and structured, and base64 grows it by a third: still well under a 16 MiB MCP message).
pub const MCP_FS_READ_MAX: u64 = 4 * 1024 * 1024;
/// MCP `rstream_webtty_fs_list`: entries returned (the rest is counted and flagged `truncated`).
pub const MCP_FS_LIST_MAX: usize = 10_000;
/// MCP `rstream_webtty_fs_download`: largest file copied to the operator's disk.
pub const MCP_FS_DOWNLOAD_MAX: u64 = 1024 * 1024 * 1024;
/// MCP `rstream_local_tunnel_expose`: time for the spawned `forward` to report `online`.
pub const MCP_TUNNEL_ONLINE_TIMEOUT: Duration = Duration::from_secs(20);
/// MCP local tunnels: how often the `forward` log and process are polled while waiting.
pub const MCP_TUNNEL_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// MCP `rstream_local_tunnel_stop`: time a `forward` gets to exit after SIGTERM before SIGKILL.
pub const MCP_TUNNEL_STOP_GRACE: Duration = Duration::from_secs(5);
/// MCP local tunnels tracked in the registry at once.
pub const MCP_MAX_LOCAL_TUNNELS: usize = 32;
/// Largest local tunnel registry file we read.
pub const MCP_REGISTRY_MAX_LEN: u64 = 1024 * 1024;
/// MCP remote endpoints (`rstream_remote_mcp_*`): largest answer read from a remote MCP server (upstream's).
pub const MCP_REMOTE_RESPONSE_CAP: usize = 4 * 1024 * 1024;
/// `rstream mcp publish`: largest JSON-RPC request body accepted (upstream's; beyond it: 413).
pub const MCP_PUBLISH_BODY_CAP: usize = 1024 * 1024;
/// MCP remote endpoints: largest request body sent (a tool call's arguments included).
pub const MCP_REMOTE_REQUEST_CAP: usize = 1024 * 1024;
/// MCP remote endpoints: longest a connection may go without progress (a remote tool call that takes longer
/// before answering fails).
pub const MCP_REMOTE_TIMEOUT: Duration = Duration::from_secs(300);

/// Connections open at once on one engine (all protocols); beyond it new connections are closed at accept. The
/// engine lowers it to what its open-files limit allows (`engine::admission::connection_cap`).
pub const MAX_ENGINE_CONNECTIONS: usize = 16_384;
/// Deadline for a client's TLS handshake with the engine (and with a `webtty server --listen` serving TLS).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest tunnel name (it is also a DNS label of the published host).
pub const MAX_TUNNEL_NAME_LEN: usize = 63;
/// Longest JWT the engine will look at.
pub const MAX_JWT_LEN: usize = 8 * 1024;
/// Most executor threads the engine runs (it uses at most the machine's parallelism).
pub const MAX_ENGINE_THREADS: usize = 8;
/// How long a tunnel name stays reserved for the token subject that registered it after its control channel
/// drops (`engine serve --name-grace`): three heartbeat deadlines, so a device that reboots or loses its link
/// gets its name back before anyone else can take it.
pub const NAME_GRACE_DEFAULT: Duration = Duration::from_secs(3 * HEARTBEAT_DEAD_AFTER.as_secs());
/// Names held in reserve at once on one engine; beyond it a dropped tunnel's name is freed at once.
pub const MAX_NAME_RESERVATIONS: usize = 16_384;
/// Largest token revocation list the engine reads (`<state>/revoked-tokens`, one `jti` per line).
pub const MAX_REVOCATION_LIST_LEN: u64 = 1024 * 1024;

/// `webtty server --allow-detach`: sessions whose supervisor lingers at once for detached processes (beyond it, a
/// session's detached processes are ended with it).
pub const WEBTTY_MAX_LINGERING_SESSIONS: usize = 32;
/// After SIGKILL, how long a session's supervisor gets to reap the last of its processes before it is killed
/// too (and a sweep of strays gets to find nothing left).
pub const WEBTTY_KILL_DEADLINE: Duration = Duration::from_secs(5);
/// How often the end of a session re-checks its process tree (and sends SIGKILL to what is left).
pub const WEBTTY_KILL_POLL: Duration = Duration::from_millis(20);

/// MCP server: the most bytes read from one engine state file (HS256 secret, private key) to learn the secrets
/// results must not contain; a longer file is not one the engine wrote.
pub const MCP_SECRET_FILE_MAX: u64 = 64 * 1024;

/// Largest tunnel-name owners file the engine writes or reads (`<state>/tunnel-names`): room for
/// [`MAX_NAME_RESERVATIONS`] names with their subjects; a longer file is set aside as damaged.
pub const MAX_NAME_STORE_LEN: u64 = 4 * 1024 * 1024;
/// After a tunnel name changes hands, how long the engine waits for the rest of a burst (a fleet reconnecting)
/// before it writes `<state>/tunnel-names` once for all of them.
pub const NAME_STORE_DEBOUNCE: Duration = Duration::from_millis(500);
/// After a failed write of `<state>/tunnel-names`, how long until the engine tries again.
pub const NAME_STORE_RETRY: Duration = Duration::from_secs(5);

/// Connections from one source (an IPv4 address, an IPv6 /64) that have not authenticated yet — in their TLS
/// handshake, before their first message or HTTP request, or on the REST API without a valid token — held at
/// once by the engine. Beyond it a new connection from that source is closed at accept, so one host cannot use
/// up [`MAX_ENGINE_CONNECTIONS`] (or the descriptors) with silent or tokenless connections. Room for an agent's
/// burst of legs ([`MAX_AGENT_STREAMS`]) and as many dials from the same address.
pub const MAX_PREAUTH_CONNECTIONS_PER_SOURCE: usize = 2 * MAX_AGENT_STREAMS;
/// Of those, how many may be past their first byte (TLS handshake, first message) at once; the others wait their
/// turn holding a few hundred bytes each. Bounds what one host's slow or silent peers cost in TLS state.
pub const MAX_PREAUTH_HANDSHAKES_PER_SOURCE: usize = 64;
/// Descriptors the engine keeps for itself (listeners, the reactor, state files, stdio) when it derives its
/// connection cap from `RLIMIT_NOFILE`.
pub const ENGINE_RESERVED_FDS: u64 = 64;
/// Descriptors one engine connection needs: its socket (a stream's two ends are two connections).
pub const ENGINE_FDS_PER_CONNECTION: u64 = 1;
/// Largest first frame of an `rstrm/1` connection, read before the peer has authenticated: a request carrying
/// a token of at most [`MAX_JWT_LEN`] and a few short client details.
pub const MAX_FIRST_FRAME_LEN: usize = MAX_JWT_LEN + 2048;
/// Bytes of a frame body buffered before any of it arrived; the buffer then grows with what the peer really
/// sent (doubling), so an announced length costs nothing until its bytes are there.
pub const FRAME_READ_START: usize = 1024;
/// First size of an HTTP connection's head buffer; it doubles up to [`MAX_HTTP_HEAD_LEN`] only when a head
/// needs it, so a silent or slow client holds a small buffer.
pub const HTTP_HEAD_BUF_START: usize = 1024;

/// MCP server: requests (any method) in flight at once, running or waiting; one more is refused with -32000
/// "server is busy" (upstream: 8 running + 16 queued).
pub const MCP_MAX_IN_FLIGHT: usize = MCP_MAX_RUNNING_CALLS + 16;
/// MCP server: `tools/call` requests running at once; the others wait, in arrival order, for a free slot.
pub const MCP_MAX_RUNNING_CALLS: usize = 8;
/// MCP server: longest JSON-RPC message read from stdin (upstream's 8 MiB); a longer line is refused and dropped.
pub const MCP_MAX_MESSAGE_LEN: usize = 8 * 1024 * 1024;
/// MCP server: messages queued each way between stdio and the server loop (a client that stops reading, or
/// floods, is held back here).
pub const MCP_STDIO_QUEUE: usize = 64;
/// MCP `rstream_webtty_fs_upload`: largest local file sent (the server's --fs-max-upload-size may be lower).
pub const MCP_FS_UPLOAD_MAX: u64 = 1024 * 1024 * 1024;
