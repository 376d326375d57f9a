"""Alert commands: alerts, silences, the notification log."""

from __future__ import annotations

import click

from mlops_tasks import reports
from mlops_tasks.alerts.model import KINDS
from mlops_tasks.alerts.subjects import silence_alerts
from mlops_tasks.durations import parse_duration
from mlops_tasks.timefmt import iso

from .context import App, json_option, pass_app
from .output import emit, fmt, table


@click.command("alerts")
@click.option("--model", metavar="M",
              help="Only this model, or system subject (a scheduled job's name, registry).")
@click.option("--since", default="24h", show_default=True, help="How far back, e.g. 2h, 7d.")
@click.option("--active", "active_only", is_flag=True, help="Only alerts still firing.")
@json_option
@pass_app
def alerts(app: App, model: str | None, since: str, active_only: bool, as_json: bool) -> None:
    """Alerts fired, resolved or announced recently, and those still firing."""
    found = [a.to_dict() for a in reports.alert_listing(
        app.services, model, parse_duration(since, "--since"), active_only)]
    emit(as_json, {"alerts": found}, lambda: table(
        ["fired at", "model", "version", "kind", "severity", "status", "message"],
        [[a["fired_at"], a["model"], a["version"], a["kind"], a["severity"], a["status"],
          a["message"]] for a in found]) if found else "no alerts")


@click.command("silence")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind of alert.")
@click.option("--for", "duration", required=True, help="How long, e.g. 30m, 2h, 1d.")
@click.option("--reason", metavar="TEXT", help="Why (shown in `mlops silences`).")
@click.option("--actor", metavar="NAME", help="Who (default: MLOPS_ACTOR, else the OS user).")
@json_option
@pass_app
def silence(app: App, name: str, kind: str | None, duration: str, reason: str | None,
            actor: str | None, as_json: bool) -> None:
    """Mute the alerts of a model or system subject (a scheduled job's name, registry), or
    one kind of them, for a while."""
    s = silence_alerts(app.services, name, kind, parse_duration(duration, "--for"), reason,
                       app.actor(actor))
    emit(as_json, s, f"silence {s['id']}: {name} {kind or 'all alerts'} muted until "
                     f"{s['until']}")


@click.command("silences")
@click.option("--all", "include_expired", is_flag=True, help="Include expired silences.")
@json_option
@pass_app
def silences(app: App, include_expired: bool, as_json: bool) -> None:
    """Silences in force (or all of them)."""
    found = app.services.alerts.store.silences(include_expired)
    emit(as_json, {"silences": found}, lambda: table(
        ["id", "model", "kind", "until", "active", "by", "reason"],
        [[s["id"], s["model"], s["kind"] or "all", s["until"], s["active"], s["created_by"],
          s["reason"]] for s in found]) if found else "no silences")


@click.command("unsilence")
@click.argument("silence_id")
@json_option
@pass_app
def unsilence(app: App, silence_id: str, as_json: bool) -> None:
    """Remove a silence."""
    s = app.services.alerts.store.remove_silence(silence_id)
    emit(as_json, {"removed": s}, f"silence {silence_id} removed ({s['model']})")


@click.command("notifications")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@pass_app
def notifications(app: App, limit: int, as_json: bool) -> None:
    """What was sent to whom: every notification and delivery attempt, newest first."""
    found = app.services.alerts.store.notifications(limit)
    emit(as_json, {"notifications": found}, lambda: table(
        ["at", "model", "kind", "status", "channel", "receiver", "result", "detail"],
        [[iso(n["at"]), n.get("model"), n.get("kind"), n.get("status"), n.get("channel"),
          n.get("receiver"), n.get("result"), fmt(n.get("error") or n.get("http_status"))]
         for n in found]) if found else "nothing sent yet")


def register(group: click.Group) -> None:
    for command in (alerts, silence, silences, unsilence, notifications):
        group.add_command(command)
