"""A hostile MCP server for Colony's tests, written on the official Python SDK: it hangs,
answers 100 MB, dies mid-call, writes terminal escapes to stderr, and with
`--hang-at-start` never answers the handshake; with `--linger` it does not exit when its
stdin closes (as a well-behaved stdio server does), but stays on for an hour.

    hostile_server.py [--hang-at-start] [--linger] [--http PORT]
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

if "--hang-at-start" in sys.argv:
    time.sleep(3600)

# Terminal control on stderr: the host must log it as inert text.
sys.stderr.write("\x1b[2J\x1b]0;owned\x07hostile server starting\n")
sys.stderr.flush()

server = MCPServer("hostile")


@server.tool(description="Echoes its text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Never answers.")
async def hang() -> str:
    import anyio
    await anyio.sleep(3600)
    return "unreachable"


@server.tool(description="Answers 100 MB of text.")
def huge() -> str:
    return "x" * (100 << 20)


@server.tool(description="Dies in the middle of the call.")
def die() -> str:
    os._exit(3)


@server.tool(description="Reports its process id.")
def pid() -> str:
    return str(os.getpid())


if __name__ == "__main__":
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        try:
            server.run()
        finally:
            # However the session ended (stdin closed, a broken pipe): stay on.
            if "--linger" in sys.argv:
                time.sleep(3600)
