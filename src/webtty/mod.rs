//! WebTTY: remote exec and PTY sessions over WebSocket — the device server and the operator client.
