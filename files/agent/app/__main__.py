"""`python -m app`: validate settings, then run uvicorn with them.

systemd units and the Dockerfile start the service this way, so host, port,
workers and the graceful-shutdown timeout come from the same env vars as
everything else.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from app.logging_setup import build_log_config, configure_logging
from app.settings import Settings, SettingsError, load_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_metrics_dir(settings: Settings) -> None:
    """Workers are separate processes: they share metrics through files in
    PROMETHEUS_MULTIPROC_DIR, emptied here so a previous run's counts do not
    leak into this one.

    Runs before anything imports prometheus_client (which picks its storage
    mode at import time and, in multiprocess mode, creates files at once);
    workers inherit the variable.
    """
    if settings.metrics_multiproc_dir:
        directory = Path(settings.metrics_multiproc_dir)
    elif settings.workers > 1:
        directory = Path(tempfile.mkdtemp(prefix="agent-metrics-"))
        os.environ[MULTIPROC_ENV] = str(directory)
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    else:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def _bind_worker_socket_as_tcp() -> None:
    """With several workers uvicorn binds the listening socket itself with
    proto 0; asyncio then skips TCP_NODELAY on accepted connections and every
    keep-alive response waits ~40 ms for the client's delayed ACK
    (Kludex/uvicorn#3149, open). Re-wrapping the bound socket as IPPROTO_TCP
    restores NODELAY in every worker. Harmless once uvicorn fixes it."""
    from uvicorn.config import Config

    original_bind_socket = Config.bind_socket

    def bind_socket(config: Config) -> socket.socket:
        sock = original_bind_socket(config)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM and sock.proto == 0:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock

    Config.bind_socket = bind_socket  # type: ignore[method-assign]


def _exit_zero_on_stop_signal(signum: int, frame: object) -> None:
    """uvicorn restores the previous handler after its graceful shutdown and then
    re-raises the stop signal, so with Python's defaults the process would end
    "killed by SIGTERM" (Docker reports 143) or with a KeyboardInterrupt
    traceback. Having drained cleanly, exit 0 instead. A signal arriving before
    uvicorn takes over (while the app imports) also stops the process here."""
    raise SystemExit(0)


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"agent: {error}", file=sys.stderr)
        return 2

    import uvicorn

    log_config = build_log_config(settings)
    configure_logging(settings)
    try:
        _prepare_metrics_dir(settings)
    except OSError as error:
        print(f"agent: {MULTIPROC_ENV} cannot be prepared: {error}", file=sys.stderr)
        return 2
    logging.getLogger("agent.main").info(
        "starting uvicorn on %s:%d with %d worker(s), graceful shutdown timeout %gs",
        settings.host, settings.port, settings.workers, settings.shutdown_timeout_s,
    )
    if settings.workers > 1:
        _bind_worker_socket_as_tcp()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_zero_on_stop_signal)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=log_config,
        log_level=settings.log_level.lower(),
        access_log=False,  # the middleware writes a richer access line with the request id
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,  # type: ignore[arg-type]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
