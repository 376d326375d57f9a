"""What an alert is about: a registered model, a scheduled job, or the registry.

An alert's ``model`` field names its subject, and its subject names where it is stored
(``keys.alerts_active(subject)``, ``keys.alerts_history(subject)``): a model's name, the name of
a scheduled job of ``jobs.JOBS`` (``scheduler_job_failing``, ``cleanup_completed``), or
:data:`REGISTRY` (``registry_cache_miss_rate``). The system subjects are a fixed list read from
the job table, so every reader (listings, webhook deliveries, cleanup, the metrics) finds their
alerts without a scan. A model registered under one of these names shares its alert listing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import jobs
from ..errors import NotFoundError, ValidationError
from .model import ABOUT_JOB, ABOUT_MODEL, ABOUT_REGISTRY, SPEC

if TYPE_CHECKING:
    from ..registry import Registry
    from ..services import Services

REGISTRY = "registry"  # the subject of registry_cache_miss_rate
CLEANUP_JOB_SHORT = "cleanup"  # the job whose runs cleanup_completed reports


def system_subjects() -> tuple[str, ...]:
    """Every subject that is not a model: the scheduled jobs, then the registry."""
    return (*(j.name for j in jobs.JOBS), REGISTRY)


def cleanup_subject() -> str:
    """The subject of ``cleanup_completed``: the daily cleanup job's name."""
    return next((j.name for j in jobs.JOBS if j.short == CLEANUP_JOB_SHORT),
                CLEANUP_JOB_SHORT)


def alert_subjects(models: Iterable[str]) -> list[str]:
    """The subjects whose alerts to read: ``models`` and every system subject, once each."""
    return sorted({*models, *system_subjects()})


def about(name: str) -> str:
    """What ``name`` is as a subject: ABOUT_JOB, ABOUT_REGISTRY, else ABOUT_MODEL."""
    if name == REGISTRY:
        return ABOUT_REGISTRY
    return ABOUT_JOB if name in system_subjects() else ABOUT_MODEL


def check_subject(registry: Registry, name: str, kind: str | None = None) -> None:
    """Raise unless ``name`` is something alerts are about (a registered model or a system
    subject) and, with ``kind``, one that alerts of ``kind`` are about. For `mlops silence`
    and `mlops alerts --model`."""
    if about(name) == ABOUT_MODEL:
        try:
            registry.meta(name)
        except NotFoundError as exc:
            raise NotFoundError(f"{exc}; alerts not about a model are about "
                                f"{', '.join(system_subjects())}") from None
    if kind is None or kind not in SPEC:
        return
    wanted = SPEC[kind].about
    fits = {ABOUT_MODEL: about(name) == ABOUT_MODEL,
            ABOUT_REGISTRY: name == REGISTRY,
            ABOUT_JOB: about(name) == ABOUT_JOB and (
                kind != "cleanup_completed" or name == cleanup_subject())}[wanted]
    if not fits:
        targets = {ABOUT_MODEL: "a model",
                   ABOUT_REGISTRY: REGISTRY,
                   ABOUT_JOB: cleanup_subject() if kind == "cleanup_completed" else
                   "a scheduled job (" + ", ".join(j.name for j in jobs.JOBS) + ")"}[wanted]
        raise ValidationError(f"--kind: {kind} alerts are about {targets}, not {name!r}")


def silence_alerts(svc: Services, name: str, kind: str | None, duration_s: float,
                   reason: str | None, actor: str) -> dict[str, Any]:
    """`mlops silence`: mute the alerts of ``name`` (a model or a system subject), or only its
    alerts of ``kind``, for ``duration_s``; the silence as stored."""
    check_subject(svc.registry, name, kind)
    return svc.alerts.store.add_silence(name, kind, duration_s, reason, actor)
