"""Sending email over SMTP, always through the job queue so a slow or down server loses nothing."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy.orm import Session

from patronage.config import Settings, get_settings
from patronage.kit.jobs import enqueue
from patronage.kit.jobs.backoff import schedule_backoff
from patronage.kit.jobs.registry import JobContext, task

log = logging.getLogger("patronage.mail")


def build_message(settings: Settings, *, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="patronage.local")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def deliver(settings: Settings, message: EmailMessage) -> None:
    """Hand one message to the configured SMTP server (raises on failure; the job retries).

    With ``mail_backend = "log"`` the message is logged instead (development: sign-in links show in the log).
    """
    if settings.mail_backend == "log":
        body = message.get_body(("plain",))
        log.info("mail not sent (PATRONAGE_MAIL_BACKEND=log) to %s: %s\n%s", message["To"], message["Subject"],
                 body.get_content() if body is not None else "")
        return
    timeout = settings.smtp_timeout_seconds
    smtp: smtplib.SMTP
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(message)


def queue_email(
    session: Session, workspace_id: int | None, *, to: str, subject: str, text: str, html: str | None = None
) -> None:
    """Send after the current transaction commits (the job is part of it)."""
    enqueue(session, "mail.send", {"to": to, "subject": subject, "text": text, "html": html},
            workspace_id=workspace_id)


@task("mail.send", max_attempts=8, backoff=schedule_backoff([10, 30, 120, 600, 1800, 3600, 7200]))
def send_email_job(session: Session, ctx: JobContext) -> None:
    settings = get_settings()
    payload = ctx.payload
    deliver(settings, build_message(settings, to=payload["to"], subject=payload["subject"],
                                    text=payload["text"], html=payload.get("html")))
