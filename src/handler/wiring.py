"""What the Lambda entry points add to `bootstrap.build_renewer`: tracing of every port (each
port is wrapped as it is built) and the fan-out queue.

Everything is built per invocation: the config is read again (a change needs no redeploy), and
no boto3 client outlives an invocation (assumed-role credentials for cross-account DNS expire).
"""
from __future__ import annotations

from dataclasses import dataclass

from acme_flow import bootstrap
from acme_flow.adapters.queue import SqsQueue
from acme_flow.models import Config
from acme_flow.renewal import Renewer

from .observability import TracedPort, tracer
from .settings import HandlerSettings

@dataclass
class Wired:
    settings: bootstrap.Settings
    handler_settings: HandlerSettings
    config: Config
    clients: bootstrap.Clients
    clock: bootstrap.SystemClock
    renewer: Renewer

    def queue(self) -> SqsQueue | None:
        url = self.handler_settings.queue_url
        return SqsQueue(self.clients.get("sqs", _region_of_queue(url)), url) if url else None


def build() -> Wired:
    settings = bootstrap.Settings.from_env()
    handler_settings = HandlerSettings.from_env()
    clients = bootstrap.Clients(settings.region)
    config = bootstrap.load_config(settings, clients)
    clock = bootstrap.SystemClock()
    wrap = None if tracer().disabled else TracedPort  # every port method an X-Ray subsegment
    renewer = bootstrap.build_renewer(config, settings, clients=clients, clock=clock, wrap=wrap)
    return Wired(settings, handler_settings, config, clients, clock, renewer)


def _region_of_queue(url: str) -> str | None:
    """https://sqs.<region>.amazonaws.com/<account>/<name> -> region (None for other shapes)."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "sqs" else None
