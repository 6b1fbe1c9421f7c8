"""``shipyard serve``: every endpoint over REST and the Open Inference Protocol."""

from __future__ import annotations

from typing import Annotated

import typer

# The range a TCP port can take; 0 (any free port) is refused, since nobody could then find the server.
PORT_RANGE = (1, 65535)


def check_port(port: int) -> int:
    """A usage error naming the allowed range, rather than the server failing to bind later."""
    low, high = PORT_RANGE
    if not low <= port <= high:
        raise typer.BadParameter(f"{port} is not a TCP port; use {low} to {high}")
    return port


def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server beyond this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", callback=check_port)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the port; each loads every model.", min=1)] = 1,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Allow a non-loopback --host with auth off (no API keys): every caller is admin."
        ),
    ] = False,
    tls_cert: Annotated[
        str | None,
        typer.Option(
            "--tls-cert", help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.", metavar="FILE"
        ),
    ] = None,
    tls_key: Annotated[
        str | None,
        typer.Option("--tls-key", help="The certificate's unencrypted PEM private key.", metavar="FILE"),
    ] = None,
) -> None:
    """Serve every endpoint; changes to endpoints and aliases are picked up within seconds.

    Example: shipyard serve --port 8000 --workers 2

    Example: shipyard serve --host 0.0.0.0 --tls-cert server.pem --tls-key server-key.pem
    """
    # Nothing else is imported here: the server process reads (and checks) the settings itself, and
    # reports a bad one in one line, so the command line hands over as soon as the port is known free.
    from shipyard.serving.server import exec_server

    exec_server(host=host, port=port, workers=workers, insecure=insecure, tls_cert=tls_cert, tls_key=tls_key)
