"""bench.tracing_cost: the /proc readings its figures come from."""

from __future__ import annotations

import os
import socket
import time

from bench.tracing_cost import cpu_seconds, listening_pid


def test_the_process_listening_on_a_port_is_found_and_a_free_port_has_none():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert listening_pid(port) == os.getpid()
    assert listening_pid(port) is None


def test_cpu_seconds_grow_with_work_and_a_gone_process_reads_zero():
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn 50 ms of CPU
        pass
    assert cpu_seconds(os.getpid()) >= before + 0.03  # clock ticks are 10 ms
    assert cpu_seconds(None) == 0.0
    assert cpu_seconds(2**22 + 1) == 0.0  # above pid_max's default: no such process
