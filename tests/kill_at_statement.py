"""Run `ember db upgrade` and SIGKILL it just before its Nth SQL statement, for N = 1, 2, ...

    python -m tests.kill_at_statement CONFIG_1 CONFIG_2 ... CONFIG_K

For each CONFIG_N (one fresh database each) a child process is forked that runs the real entry
point, `bots.cli.main(["db", "upgrade", "--config", CONFIG_N])`, and kills itself with SIGKILL
just before sending its Nth statement: as `kill -9` would, with no cleanup, no rollback and no
close. Statements are counted by a class-level SQLAlchemy event, so the async engine's sync
core and any plain engine alike. One line is printed per child: `N killed` or `N exit STATUS`.

Forking after the imports makes each child cheap (importing ember takes seconds), and no
timing is involved: which statement a child dies before is exact.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bots.cli import main as ember


def run_killed_at(kill_at: int, config: str) -> None:
    """In the child: count statements, die before statement `kill_at`, else exit with ember's status."""
    sent = 0

    def before_statement(*_: Any) -> None:
        nonlocal sent
        sent += 1
        if sent == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Engine, "before_cursor_execute", before_statement)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the report lines are the parent's
    status = ember(["db", "upgrade", "--config", config])
    sys.stdout.flush()
    os._exit(status)


def outcome(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGKILL:
        return "killed"
    return f"exit {os.waitstatus_to_exitcode(wait_status)}"


def main(configs: list[str]) -> int:
    for kill_at, config in enumerate(configs, start=1):
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run_killed_at(kill_at, config)
        _, wait_status = os.waitpid(pid, 0)
        print(f"{kill_at} {outcome(wait_status)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
