"""Run the catalogue against a peer: the main scenarios on one start, then each lifecycle scenario on its own."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from remoteproc.conformance.common import NotApplicable
from remoteproc.conformance.host_role.context import HostContext, Peer
from remoteproc.conformance.host_role.scenarios import CATALOGUE, LIFECYCLE, Scenario
from remoteproc.conformance.report import Outcome, Report, Result

log = logging.getLogger(__name__)

Progress = Callable[[Result], None]


def _run_one(scenario: Scenario, ctx: HostContext | None, start_error: str | None) -> Result:
    t0 = time.monotonic()
    if ctx is None:
        return Result(scenario.name, scenario.rule, Outcome.FAIL, f"the peer did not start: {start_error}", 0.0)
    try:
        evidence = scenario.run(ctx)
        outcome = Outcome.PASS
    except NotApplicable as exc:
        outcome, evidence = Outcome.NOT_APPLICABLE, str(exc)
    except Exception as exc:  # any failure of the peer is this scenario's result, not a crash of the run
        outcome, evidence = Outcome.FAIL, str(exc) or type(exc).__name__
        log.debug("scenario %s failed", scenario.name, exc_info=True)
    return Result(scenario.name, scenario.rule, outcome, evidence, time.monotonic() - t0)


def _start(peer: Peer, timeout: float) -> tuple[HostContext | None, str | None]:
    try:
        return peer.start(timeout), None
    except Exception as exc:
        return None, str(exc) or type(exc).__name__


def run(
    peer: Peer,
    *,
    only: Iterable[str] | None = None,
    timeout: float = 5.0,
    progress: Progress | None = None,
) -> Report:
    """The report of every selected scenario (all by default) against ``peer``."""
    wanted = set(only) if only is not None else None
    known = {s.name for s in CATALOGUE + LIFECYCLE}
    if wanted is not None and wanted - known:
        raise ValueError(f"unknown scenarios: {', '.join(sorted(wanted - known))} (known: {', '.join(sorted(known))})")
    report = Report(peer.description)

    def record(result: Result) -> None:
        report.results.append(result)
        if progress is not None:
            progress(result)

    main = [s for s in CATALOGUE if wanted is None or s.name in wanted]
    lifecycle = [s for s in LIFECYCLE if wanted is None or s.name in wanted]
    shutdown = [s for s in lifecycle if s.name == "shutdown"]
    ctx: HostContext | None = None
    if main or shutdown:
        ctx, error = _start(peer, timeout)
        for scenario in main:
            record(_run_one(scenario, ctx, error))
        for scenario in shutdown:  # ends this start
            record(_run_one(scenario, ctx, error))
        if ctx is not None:
            ctx.close()
            ctx.lifecycle.reap()
    for scenario in lifecycle:
        if scenario.name == "shutdown":
            continue
        ctx, error = _start(peer, timeout)
        try:
            record(_run_one(scenario, ctx, error))
        finally:
            if ctx is not None:
                ctx.close()
                ctx.lifecycle.reap()
    return report
