#!/usr/bin/env python3
"""Drives the real `rstream mcp serve` with the official MCP Python SDK, as an agent would (tests/mcp_sdk.rs).

Usage: drive.py PARAMS.json. PARAMS (written by the Rust harness, which started the engine and the devices) names
the scenario, the rstream binary, the config file holding the engine's context, the two WebTTY servers
(`codex`: exec + fs, label role=codex; `ops`: exec only, label role=ops), the codex server's fs root and a scratch
directory. The devices run on this machine, so the scenarios check their effects directly (files, /proc).
Exits 0 when the scenario holds; otherwise prints why and exits 1. Every wait is bounded.
"""

import json
import os
import socket
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import jsonschema
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

P = json.loads(Path(sys.argv[1]).read_text())
SCRATCH = Path(P["scratch"])
CODEX, OPS = P["codex_url"], P["ops_url"]
DEADLINE = 60


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def log(*parts):
    print("drive.py:", *parts, file=sys.stderr, flush=True)


@asynccontextmanager
async def session(*flags):
    """An initialized SDK session with `rstream mcp serve FLAGS`."""
    env = {"RSTREAM_CONFIG": P["config"]}
    params = StdioServerParameters(command=P["rstream"], args=["mcp", "serve", *flags], env=env)
    with open(SCRATCH / "mcp-serve.stderr", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                check(init.protocol_version == "2025-11-25", f"protocol {init.protocol_version}")
                yield s


def text(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def poll(what, probe, limit=20.0):
    end = time.monotonic() + limit
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise Failure(f"timed out after {limit}s waiting for {what}")
        await anyio.sleep(0.02)


def started(marks):
    return len([p for p in marks.iterdir() if p.name.startswith("started.")])


def held(marks, n):
    """argv of a remote command that marks itself started, then waits for marks/go."""
    script = f"touch {marks}/started.{n}; while [ ! -e {marks}/go ]; do sleep 0.02; done; echo released {n}"
    return ["sh", "-c", script]


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# ---- scenarios ----


async def schemas():
    """Every tool listed is called at least once; each result validates against that tool's outputSchema."""
    async with session() as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        for name, tool in tools.items():
            dumped = tool.model_dump(by_alias=True, exclude_none=True)
            check(dumped.get("outputSchema", {}).get("type") == "object", f"{name}: no object outputSchema")
            jsonschema.Draft202012Validator.check_schema(dumped["outputSchema"])
            meta = dumped.get("_meta", {})
            check(meta.get("openai/toolInvocation/invoking") == f"Running: {tool.title}", f"{name}: _meta {meta}")
            check(meta.get("openai/toolInvocation/invoked") == f"Finished: {tool.title}", f"{name}: _meta {meta}")
            a = dumped.get("annotations", {})
            for hint in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
                check(isinstance(a.get(hint), bool), f"{name}: annotation {hint} missing")
        called = set()

        async def call(name, args, *, ok=True):
            # The SDK validates structuredContent of successful results against outputSchema itself (raising
            # on a mismatch); error results carrying data (a failed exec) are validated here too.
            result = await s.call_tool(name, args)
            check(result.is_error is (not ok), f"{name} {args}: isError={result.is_error}: {text(result)}")
            if result.structured_content is not None or ok:
                schema = tools[name].model_dump(by_alias=True)["outputSchema"]
                jsonschema.validate(result.structured_content, schema)
            called.add(name)
            return result.structured_content

        status = await call("rstream_runtime_status", {})
        check(status["ready"] is True, f"status {status}")
        check([c["name"] for c in (await call("rstream_context_list", {}))["contexts"]] == ["local"], "contexts")
        await call("rstream_context_get", {})
        tunnels = (await call("rstream_tunnels_list", {}))["tunnels"]
        check({t["name"] for t in tunnels} >= {"sdk-codex", "sdk-ops"}, f"tunnels {tunnels}")
        servers = (await call("rstream_webtty_list", {}))["servers"]
        check(sorted(x["target"] for x in servers) == ["sdk-codex", "sdk-ops"], f"servers {servers}")
        out = await call("rstream_webtty_exec", {"url": CODEX, "command": ["echo", "hello sdk"]})
        check((out["surface"], out["stdout"], out["exit_code"], out["truncated"]) == ("cli", "hello sdk\n", 0, False), out)
        failed = await call("rstream_webtty_exec", {"url": OPS, "command": ["sh", "-c", "echo half; exit 3"]}, ok=False)
        check((failed["exit_code"], failed["stdout"]) == (3, "half\n"), failed)
        await call("rstream_webtty_fs_mkdir", {"url": CODEX, "path": "/sdk"})
        wrote = await call("rstream_webtty_fs_write", {"url": CODEX, "path": "/sdk/a.txt", "content": "alpha\n"})
        check(wrote["bytes"] == 6, wrote)
        listing = await call("rstream_webtty_fs_list", {"url": CODEX, "path": "/sdk"})
        check([e["path"] for e in listing["entries"]] == ["/sdk/a.txt"], listing)
        stat = await call("rstream_webtty_fs_stat", {"url": CODEX, "path": "/sdk/a.txt"})
        check((stat["kind"], stat["size"]) == ("file", 6), stat)
        read = await call("rstream_webtty_fs_read", {"url": CODEX, "path": "/sdk/a.txt"})
        check((read["encoding"], read["content"]) == ("text", "alpha\n"), read)
        b64 = await call("rstream_webtty_fs_read", {"url": CODEX, "path": "/sdk/a.txt", "encoding": "base64"})
        check(b64["content"] == "YWxwaGEK", b64)
        await call("rstream_webtty_fs_move", {"url": CODEX, "path": "/sdk/a.txt", "destination": "/sdk/b.txt"})
        local = SCRATCH / "download" / "b.txt"
        got = await call("rstream_webtty_fs_download", {"url": CODEX, "path": "/sdk/b.txt", "local_path": str(local)})
        check(local.read_text() == "alpha\n" and got["bytes"] == 6, got)
        up = {"url": CODEX, "local_path": str(local), "path": "/sdk/c.txt"}
        await call("rstream_webtty_fs_upload", up)
        check((Path(P["fs_root"]) / "sdk" / "c.txt").read_text() == "alpha\n", "uploaded file content")
        await call("rstream_webtty_fs_delete", {"url": CODEX, "path": "/sdk"})
        check(not (Path(P["fs_root"]) / "sdk").exists(), "deleted directory still there")
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = str(listener.getsockname()[1])
            lt = await call("rstream_local_tunnel_expose", {"port": port, "name": "sdk-local", "publish": False})
            listed = (await call("rstream_local_tunnel_list", {}))["local_tunnels"]
            check([t["status"] for t in listed] == ["running"], listed)
            await call("rstream_local_tunnel_stop", {"id": lt["id"]})
        # Remote MCP: the fleet's private `mcp publish` endpoint sdk-mcp, found by discover once it is online.
        async def discovered():
            found = (await call("rstream_remote_mcp_discover", {}))["endpoints"]
            return [e for e in found if e["name"] == "sdk-mcp"]
        endpoints = []
        for _ in range(100):
            endpoints = await discovered()
            if endpoints:
                break
            await anyio.sleep(0.2)
        check(endpoints and endpoints[0]["rstrm_url"] == "rstrm://sdk-mcp" and endpoints[0]["path"] == "/mcp", endpoints)
        remote = await call("rstream_remote_mcp_tools", {"url": "rstrm://sdk-mcp"})
        check("rstream_runtime_status" in json.dumps(remote), f"remote tools {str(remote)[:300]}")
        answered = await call("rstream_remote_mcp_call", {"url": "rstrm://sdk-mcp", "tool": "rstream_context_list"})
        check('"local"' in json.dumps(answered), f"remote call {str(answered)[:300]}")
        await call("rstream_remote_mcp_tools", {"url": "rstrm://sdk-no-mcp"}, ok=False)
        # Remote expose through sdk-codex (--allow-detach): a listener on "the device" gets a private forward,
        # which stop ends again.
        expose_dir = SCRATCH / "remote-exposes"
        env = [f"RSTREAM_CONFIG={P['rstream_config']}", f"RSTREAM_REMOTE_EXPOSE_DIR={expose_dir}"]
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            args = {"webtty_url": CODEX, "port": port, "name": "sdk-exposed", "id": "sdk-exp", "publish": False,
                    "env": env, "rstream_command": P["rstream"], "timeout_seconds": 30}
            exposed = await call("rstream_remote_expose", args)
            check(exposed["status"] == "online" and exposed["id"] == "sdk-exp", f"expose {exposed}")
            stopped = await call("rstream_remote_expose_stop", {"webtty_url": CODEX, "id": "sdk-exp", "env": env})
            check(stopped["stopped"] is True, f"stop {stopped}")
        check(called == set(tools), f"tools never called: {sorted(set(tools) - called)}")
        log(f"{len(called)} tools called, every result valid")


async def cancel():
    """notifications/cancelled (sent by the SDK when the caller gives up) kills the remote sleep within 2 s."""
    pid_file = SCRATCH / "sleep.pid"
    async with session() as s:
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                script = f"echo $$ > {pid_file}; exec sleep 60"
                tg.start_soon(s.call_tool, "rstream_webtty_exec", {"url": CODEX, "command": ["sh", "-c", script]})
                pid = int(await poll("the remote sleep to start", lambda: pid_file.exists() and pid_file.read_text().strip()))
                check(alive(pid), "sleep not running")
                tg.cancel_scope.cancel()
        cancelled_at = time.monotonic()
        await poll(f"remote sleep {pid} to be killed", lambda: not alive(pid), limit=2.0)
        log(f"remote sleep {pid} gone {time.monotonic() - cancelled_at:.2f}s after the cancellation")
        result = await s.call_tool("rstream_runtime_status", {})
        check(not result.is_error, "session unusable after a cancellation")


async def concurrency():
    """9 calls at once: 8 run, 1 waits; 8 + 16 + 1 at once: exactly one is refused with -32000 "server is busy"."""
    async with session() as s:
        for total, expect_busy in ((9, 0), (25, 1)):
            marks = SCRATCH / f"marks-{total}"
            marks.mkdir()
            outcomes = []

            async def one(n):
                try:
                    outcomes.append(await s.call_tool("rstream_webtty_exec", {"url": CODEX, "command": held(marks, n)}))
                except MCPError as e:
                    outcomes.append(e)

            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:
                    for n in range(total):
                        tg.start_soon(one, n)
                    await poll("eight calls to run", lambda: started(marks) == 8)
                    await poll("the refusals", lambda: len(outcomes) == expect_busy, limit=10.0)
                    # A ninth must not start while the eight hold their slots (watched for a while).
                    end = time.monotonic() + 0.7
                    while time.monotonic() < end:
                        check(started(marks) == 8, f"{started(marks)} calls ran at once")
                        await anyio.sleep(0.02)
                    (marks / "go").touch()
            busy = [o for o in outcomes if isinstance(o, MCPError)]
            check(len(busy) == expect_busy, f"{total} calls: {len(busy)} refused: {busy}")
            for e in busy:
                check((e.code, e.message) == (-32000, "server is busy"), f"refusal {e.code} {e.message}")
            done = [o for o in outcomes if not isinstance(o, MCPError)]
            check(all(not o.is_error and o.structured_content["stdout"].startswith("released") for o in done), "a call failed")
            check(len(done) == total - expect_busy and started(marks) == total - expect_busy, f"{len(done)} answered")
            log(f"{total} calls: 8 ran at once, {len(done)} answered, {len(busy)} busy")


async def read_only():
    """--read-only: exec and fs_write are neither listed nor callable, and nothing reaches the device."""
    marker = SCRATCH / "ran"
    async with session("--read-only") as s:
        tools = (await s.list_tools()).tools
        names = {t.name for t in tools}
        check("rstream_webtty_exec" not in names and "rstream_webtty_fs_write" not in names, sorted(names))
        check({"rstream_webtty_list", "rstream_webtty_fs_read"} <= names, sorted(names))
        check(all(t.annotations.read_only_hint for t in tools), "a listed tool is not read-only")
        check("--read-only" in (s.initialize_result.instructions or ""), "instructions do not mention the policy")
        r = await s.call_tool("rstream_webtty_exec", {"url": CODEX, "command": ["touch", str(marker)]})
        check(r.is_error and "--read-only" in text(r), text(r))
        r = await s.call_tool("rstream_webtty_fs_write", {"url": CODEX, "path": "/ro.txt", "content": "x"})
        check(r.is_error and "--read-only" in text(r), text(r))
        r = await s.call_tool("rstream_webtty_fs_list", {"url": CODEX})
        check(not r.is_error, text(r))
    check(not marker.exists() and not (Path(P["fs_root"]) / "ro.txt").exists(), "a refused call reached the device")
    log("read-only policy held")


async def allow_servers():
    """--allow-servers: a server outside the filter is invisible and refused before anything is sent to it."""
    marker = SCRATCH / "ran-on-ops"
    async with session("--allow-servers", "labels.rstream.webtty.label.role=codex") as s:
        servers = (await s.call_tool("rstream_webtty_list", {})).structured_content["servers"]
        check([x["target"] for x in servers] == ["sdk-codex"], servers)
        tunnels = (await s.call_tool("rstream_tunnels_list", {})).structured_content["tunnels"]
        check("sdk-ops" not in {t["name"] for t in tunnels}, tunnels)
        for url in (OPS, "sdk-ops"):
            r = await s.call_tool("rstream_webtty_exec", {"url": url, "command": ["touch", str(marker)]})
            check(r.is_error and "--allow-servers" in text(r), text(r))
        r = await s.call_tool("rstream_webtty_fs_list", {"url": OPS})
        check(r.is_error and "--allow-servers" in text(r), text(r))
        r = await s.call_tool("rstream_webtty_exec", {"url": CODEX, "command": ["echo", "allowed"]})
        check(not r.is_error and r.structured_content["stdout"] == "allowed\n", text(r))
    check(not marker.exists(), "the refused command ran on the ops server")
    log("server policy held")


def leaves(error):
    """The exceptions inside (nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from leaves(inner)
    else:
        yield error


SCENARIOS = {f.__name__: f for f in (schemas, cancel, concurrency, read_only, allow_servers)}


def main():
    scenario = SCENARIOS[P["scenario"]]
    failures = []
    try:
        anyio.run(scenario)
    except* Failure as group:
        failures = list(leaves(group))
    for e in failures:
        print(f"drive.py {P['scenario']}: FAILED: {e}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
