"""A throwaway PostgreSQL cluster: `initdb` + `pg_ctl` in a temp dir, on a free loopback port.

    async with PostgresCluster() as pg:        # or `with PostgresCluster() as pg:`
        url = pg.url                           # postgresql+asyncpg://postgres@127.0.0.1:PORT/ember
        other = pg.create_database()           # a fresh database, returns its SQLAlchemy URL
        pg.drop_database(name_of(other))

The cluster trusts every local connection (no passwords), runs with fsync off, and is stopped
(`-m immediate`) and deleted on exit. It starts with one empty database, `ember`. `initdb`
refuses to run as root, so under root the server binaries run as the `postgres` OS user via
`runuser` in a temp dir that user owns; client tools (`createdb`, `dropdb`) connect over TCP.

`unavailable_reason()` says why no cluster can be started here (no binaries, no postgres
user, no runuser) or returns None; the pytest fixtures skip with that reason. A cluster that
is available but fails to start raises `PostgresError` with the server log's tail.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

SUPERUSER = "postgres"
OS_USER = "postgres"
FIRST_DATABASE = "ember"


class PostgresError(RuntimeError):
    """The cluster could not be set up or a client tool failed."""


def find_bindir() -> Path | None:
    """The server binaries' directory: `pg_config --bindir`, else the newest Debian layout."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(found.stdout.strip())
        if found.returncode == 0 and (bindir / "initdb").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent.parent.name)
    return candidates[-1].parent if candidates else None


def unavailable_reason(bindir: Path | None = None) -> str | None:
    """Why a throwaway cluster cannot run here (with these binaries), or None when it can."""
    bindir = bindir or find_bindir()
    if bindir is None:
        return "PostgreSQL server binaries not found (no `pg_config --bindir`, no /usr/lib/postgresql/*/bin)"
    missing = [tool for tool in ("initdb", "pg_ctl", "createdb", "dropdb") if not (bindir / tool).exists()]
    if missing:
        return f"PostgreSQL tools missing from {bindir}: {', '.join(missing)}"
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"running as root and there is no {OS_USER!r} OS user for initdb (it refuses root)"
    if shutil.which("runuser") is None:
        return f"running as root and `runuser` is missing, so initdb cannot run as {OS_USER!r}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def database_name(url: str) -> str:
    """The database a URL from this module points at."""
    return url.rsplit("/", 1)[1]


class PostgresCluster:
    """One PostgreSQL server owned by a test run."""

    host = "127.0.0.1"

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir() or Path("/usr/lib/postgresql/15/bin")
        self.port = 0
        self._root: Path | None = None

    @property
    def root(self) -> Path | None:
        """The temp dir holding `data/` and `server.log` while the cluster runs."""
        return self._root

    # ------------------------------------------------------------------ addresses

    def url_for(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `ember` database."""
        return self.url_for(FIRST_DATABASE)

    @property
    def dsn(self) -> str:
        """Plain libpq/asyncpg DSN of the `ember` database."""
        return self.url_for(FIRST_DATABASE, driver="postgresql")

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        reason = unavailable_reason(self.bindir)
        if reason is not None:
            raise PostgresError(reason)
        self._root = Path(tempfile.mkdtemp(prefix="ember-pg-"))
        try:
            self._own(self._root)
            self._server_tool(
                "initdb", "-D", "data", "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                "--no-locale", "--no-sync", "--no-instructions",
            )  # fmt: skip
            self._start_server()
            self.create_database(FIRST_DATABASE)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        root, self._root = self._root, None
        if root is None:
            return
        if (root / "data" / "postmaster.pid").exists():
            self._run_as_owner(root, "pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> PostgresCluster:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ databases

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a random `test_…` name by default); return its SQLAlchemy URL."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        self._client_tool("createdb", name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still in it."""
        self._client_tool("dropdb", "--force", "--if-exists", name)

    # ------------------------------------------------------------------ processes

    def _start_server(self) -> None:
        options = " ".join(
            [
                f"-c listen_addresses={self.host}",
                f"-c unix_socket_directories={self._root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=50",
            ]
        )
        for _attempt in range(3):  # another process may grab the probed port in between
            self.port = free_port()
            started = self._server_tool(
                "pg_ctl", "-D", "data", "-l", "server.log", "-w", "-o", f"-p {self.port} {options}", "start",
                check=False,
            )  # fmt: skip
            if started.returncode == 0:
                return
        raise PostgresError(f"pg_ctl start failed:\n{started.stdout}\n{self._log_tail()}")

    def _server_tool(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self._root is not None
        return self._run_as_owner(self._root, tool, *args, check=check)

    def _run_as_owner(
        self, root: Path, tool: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(
            command, cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise PostgresError(f"{tool} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def _client_tool(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, *args]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresError(f"{tool} {' '.join(args)} failed: {done.stderr.strip()}")

    @staticmethod
    def _own(root: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(OS_USER)
            os.chown(root, user.pw_uid, user.pw_gid)

    def _log_tail(self) -> str:
        log = self._root / "server.log" if self._root else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
