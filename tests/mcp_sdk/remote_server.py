"""A standard Streamable-HTTP MCP server built with the official Python SDK (MCPServer, formerly FastMCP), for
tests/mcp_remote.rs: it runs on 127.0.0.1 behind `rstream forward --no-publish`, and `rstream mcp serve` reaches
it with rstream_remote_mcp_*. Answers come as text/event-stream (the SDK's default) and need the full handshake
(initialize, Mcp-Session-Id, notifications/initialized).

usage: remote_server.py PORT TUNNEL_NAME   (the Host header the tunnel delivers is the tunnel name; the SDK's
DNS-rebinding check is told to accept it, as an operator serving it behind a tunnel would)
"""

import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

port = int(sys.argv[1])
tunnel = sys.argv[2]
server = MCPServer("sdk-remote")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-cases a text."""
    return text.upper()


security = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=[tunnel, "127.0.0.1:*", "localhost:*"],
)
server.run(transport="streamable-http", host="127.0.0.1", port=port, transport_security=security)
