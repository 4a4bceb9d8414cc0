"""What tracing costs per call, in CPU at a fixed rate rather than in saturated throughput.

    uv run --frozen python -m bench.tracing_cost [--rps 600] [--seconds 12] [--rounds 2]

On the stack's stores (`make bench-tracing` starts what is missing, at production's sampling),
it runs a catalog replica untraced and then one traced at the production ratio, drives cached
GetProduct calls at `--rps` with ghz (below saturation, so both do the same work), and prints the
CPU each process spent per call (utime + stime from /proc, all threads): the replica, the
logging service that receives its spans and log lines, and OpenSearch that indexes them.

`make bench-edge` measures tracing as the traced replica's saturated rate over the untraced one's
(tracing-kept). On two shared cores that ratio swings by 0.1-0.2 between runs of one commit; the
CPU per call at a fixed rate is steadier, and says which process pays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from bench import edge

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def listening_pid(port: int) -> int | None:
    """The process with a listening TCP socket on 127.0.0.1/0.0.0.0 `port` (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of the whole process (every thread) so far; 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def drive(address: str, ids: list[str], rps: int, seconds: float) -> int:
    """Cached GetProduct calls at `rps` for `seconds`; returns how many answered OK."""
    out = await edge._run(
        edge._tool("ghz"),
        "--insecure",
        "--protoset",
        str(edge.PROTOSET),
        "--call",
        edge.GET_PRODUCT,
        "--data",
        json.dumps([{"id": i} for i in ids]),
        "--concurrency",
        "16",
        "--connections",
        "4",
        "--rps",
        str(rps),
        "--duration",
        f"{seconds:g}s",
        "--format",
        "json",
        address,
    )
    return int(json.loads(out).get("statusCodeDistribution", {}).get("OK", 0))


async def main(args: argparse.Namespace) -> None:
    env = os.environ
    gateway = f"127.0.0.1:{env.get('EMPORIUM_GATEWAY_PORT', '8080')}"
    ids, _ = await edge._products(gateway, 20)
    others = {
        "logging": listening_pid(int(env.get("EMPORIUM_LOGGING_GRPC_PORT", "50059"))),
        "opensearch": listening_pid(int(env.get("OPENSEARCH_PORT", "9200"))),
    }
    print(f"tracing cost: cached GetProduct at {args.rps} calls/s for {args.seconds:g} s")
    print(
        f"{'round':<6}{'case':<10}{'calls':>7}{'replica us':>12}"
        + "".join(f"{name + ' us':>15}" for name in others)
    )
    spent: dict[str, list[float]] = {"untraced": [], "traced": []}
    for round_ in range(args.rounds):
        for case in spent:
            async with edge.catalog_replica(tracing=case == "traced") as address:
                replica = listening_pid(int(address.rsplit(":", 1)[1]))
                await drive(address, ids, args.rps, 2)  # warm-up: connections, cache
                pids = {"replica": replica, **others}
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                calls = await drive(address, ids, args.rps, args.seconds)
                per_call = {
                    name: (cpu_seconds(pid) - before[name]) * 1e6 / max(calls, 1)
                    for name, pid in pids.items()
                }
            spent[case].append(sum(per_call.values()))
            print(
                f"{round_:<6}{case:<10}{calls:>7}{per_call['replica']:>12.0f}"
                + "".join(f"{per_call[name]:>15.0f}" for name in others)
            )
    untraced, traced = (sum(v) / len(v) for v in spent.values())
    print(
        f"tracing: {untraced:.0f} -> {traced:.0f} us of CPU per call "
        f"(+{(traced / untraced - 1) * 100:.0f} %, replica, logging and OpenSearch together)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rps", type=int, default=600, help="calls per second (below saturation)")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per case")
    parser.add_argument("--rounds", type=int, default=2, help="untraced/traced pairs")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
