"""Email over SMTP (optionally STARTTLS and a login), one message per alert event.

SMTP answers say whether to try again: a 4xx reply is transient by the protocol's own rules (greylisting, a
full queue), a 5xx is permanent (an unknown recipient), and a refused or dropped connection is a server
that is down, worth retrying.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from shipyard.alerts.events import AlertEvent
from shipyard.notify.base import Outcome, describe, title, where


def email_message(alert: AlertEvent, *, sender: str, to: Sequence[str], delivery_id: int) -> EmailMessage:
    """Subject ``[FIRING critical] rule on endpoint``; a plain-text body with the figure and the labels."""
    message = EmailMessage()
    message["Subject"] = title(alert)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=f"shipyard-{delivery_id}")
    message["X-Shipyard-Event"] = alert.event
    message["X-Shipyard-Delivery"] = str(delivery_id)
    lines = [describe(alert), ""]
    lines += [f"{k}: {v}" for k, v in {**where(alert), **alert.labels}.items()]
    lines += [
        f"metric: {alert.metric}",
        f"value: {'not computed' if alert.value is None else f'{alert.value:.6g}'} ({alert.op} {alert.threshold:g})",
        f"since: {alert.started_at.isoformat()}",
    ]
    if alert.ended_at is not None:
        lines.append(f"resolved at: {alert.ended_at.isoformat()}")
    if alert.action:
        lines.append(f"action: {alert.action}")
    message.set_content("\n".join(lines) + "\n")
    return message


class EmailNotifier:
    def __init__(self, config: Mapping[str, object], *, environ: Mapping[str, str], timeout_s: float) -> None:
        self.host = str(config["smtp_host"])
        self.port = int(str(config["smtp_port"]))
        self.to = [str(a) for a in config["to"]]  # type: ignore[attr-defined]
        self.sender = str(config["from"])
        self.starttls = bool(config.get("starttls", False))
        self.user_env = config.get("user_env")
        self.password_env = config.get("password_env")
        self.environ = environ
        self.timeout_s = timeout_s

    def send(self, alert: AlertEvent, *, delivery_id: int) -> Outcome:
        login = None
        if isinstance(self.user_env, str) and isinstance(self.password_env, str):
            user, password = self.environ.get(self.user_env), self.environ.get(self.password_env)
            if not user or not password:
                return Outcome(
                    f"environment variables {self.user_env} and {self.password_env} (the SMTP login) "
                    "must both be set on this server"
                )
            login = (user, password)
        message = email_message(alert, sender=self.sender, to=self.to, delivery_id=delivery_id)
        where_to = f"SMTP {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if login is not None:
                    smtp.login(*login)
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return Outcome(
                f"{where_to} refused every recipient: {exc.recipients}",
                retry=all(400 <= c < 500 for c in codes),
                answer="recipients refused",
            )
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return Outcome(
                f"{where_to} answered {exc.smtp_code} {text}", retry=exc.smtp_code < 500, answer=str(exc.smtp_code)
            )
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(f"{where_to}: {type(exc).__name__}: {exc}", retry=True, answer="no answer")
        if refused:
            return Outcome(answer=f"250 sent; refused for {', '.join(sorted(refused))}")
        return Outcome(answer="250 sent")
