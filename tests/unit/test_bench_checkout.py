"""bench.checkout's CPU accounting: which process is which, and the CPU each used."""

from __future__ import annotations

import os
from pathlib import Path

from bench.checkout import cpu_by_process, process_name


def test_processes_are_named_by_service_or_server() -> None:
    assert process_name("/work/.venv/bin/python -m services.order ") == "order"
    assert process_name("java -ea org.apache.cassandra.service.CassandraDaemon") == "cassandra"
    assert process_name("/usr/lib/erlang/erts/bin/beam.smp -- -root x") == "rabbitmq"
    assert process_name("redis-server 127.0.0.1:6379") == "redis"
    assert process_name("python -m bench.checkout --orders 300") == "bench (load generator)"
    assert process_name("/usr/bin/bash -c sleep 1") is None


def _process(proc: Path, pid: int, cmdline: str, utime: int, stime: int) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    (entry / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode())
    # comm may hold spaces and parentheses: fields are counted after its last ")".
    fields = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(utime), str(stime)]
    (entry / "stat").write_text(f"{pid} (a (b) c) {' '.join(fields)} 0 0 20")


def test_cpu_is_summed_by_name_over_processes(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    _process(tmp_path, 10, "python -m services.catalog", 3 * tick, tick)
    _process(tmp_path, 11, "python -m services.catalog", tick, 0)  # a second worker
    _process(tmp_path, 12, "redis-server 127.0.0.1:6379", 0, tick // 2)
    _process(tmp_path, 13, "sleep 100", 9 * tick, 0)
    (tmp_path / "self").mkdir()
    assert cpu_by_process(tmp_path) == {"catalog": 5.0, "redis": 0.5}
