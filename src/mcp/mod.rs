//! `rstream mcp serve`: the MCP server over stdio (rmcp; the only place tokio runs).
