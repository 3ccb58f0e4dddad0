"""``python -m bot.sandbox [--host H] [--port N] [--api-key KEY]``: run the sandbox Hypereal on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from bot.sandbox.server import SandboxProvider


async def _serve(host: str, port: int, api_key: str) -> None:
    sandbox = SandboxProvider(api_key=api_key)
    base_url = await sandbox.start(host, port)
    print(f"Sandbox Hypereal on {base_url} (API key: the one you passed with --api-key)", flush=True)
    print(f"Point the bot at it: HYPEREAL_BASE_URL={base_url} OUTPUT_HOSTS={base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.close()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    parser.add_argument("--api-key", default="sandbox-key", help="the key clients must send (default sandbox-key)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.api_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
