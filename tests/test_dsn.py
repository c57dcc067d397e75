"""Reading what comes back to a bounce address: real Postfix reports, the
shapes other systems send, and what an attacker might."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mail.dsn import Kind, Report, read

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

SAMPLES = Path(__file__).resolve().parent / "data" / "dsn"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_a_postfix_failure_report_is_permanent_with_the_remote_reason():
    assert read(sample("postfix-failed.eml")) == Report(
        Kind.FAILED, recipient="jane@clinet.example", status="5.1.1",
        diagnostic="550 5.1.1 <jane@clinet.example>: Recipient address rejected: User unknown in virtual "
                   "mailbox table",
        remote_mta="127.0.0.1")


def test_a_postfix_delay_warning_is_only_news():
    report = read(sample("postfix-delayed.eml"))
    assert (report.kind, report.recipient, report.status) == (Kind.DELAYED, "slow@client.example", "4.2.0")
    assert report.diagnostic.startswith("451 4.2.0 <slow@client.example>: mailbox busy")


def test_a_report_whose_status_part_is_base64_is_read_too():
    report = read(sample("outlook-failed-base64.eml"))
    assert (report.kind, report.recipient, report.status) == (Kind.FAILED, "jane@clinet.example", "5.1.10")
    assert "RecipientNotFound" in report.diagnostic


@pytest.mark.parametrize("name, subject", [
    ("gmail-vacation.eml", "Out of office until December 14"),
    ("outlook-automatic-reply.eml", "Réponse automatique : Secure payment request"),  # NBSP: a space
])
def test_out_of_office_replies_are_auto_replies(name, subject):
    assert read(sample(name)) == Report(Kind.AUTO_REPLY, subject=subject)


def test_a_complaint_report_is_not_a_delivery_report():
    assert read(sample("arf-complaint.eml")).kind is Kind.OTHER


def report(blocks: str, content_type: str = "multipart/report; report-type=delivery-status; boundary=b") -> bytes:
    return (f"From: MAILER-DAEMON@x.example\r\nSubject: x\r\nContent-Type: {content_type}\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            f"--b\r\nContent-Type: message/delivery-status\r\n\r\n{blocks}\r\n--b--\r\n").encode()


@pytest.mark.parametrize("blocks, kind", [
    ("Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
     Kind.DELIVERED),
    # No Action: the status class decides.
    ("Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nStatus: 5.7.1\r\n", Kind.FAILED),
    # Several recipients: the worst verdict stands.
    ("Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
     "\r\nFinal-Recipient: rfc822; c@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n", Kind.FAILED),
    # An Action nobody defined, a Status that is not one: nothing to act on.
    ("Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: exploded\r\nStatus: 9.9\r\n",
     Kind.OTHER),
    ("", Kind.OTHER),
])
def test_the_per_recipient_action_decides(blocks, kind):
    assert read(report(blocks)).kind is kind


def test_remote_text_is_one_short_line():
    evil = "Diagnostic-Code: smtp; 550 " + "A" * 5000 + "\r\n"
    header_injection = "Final-Recipient: rfc822; a@b.example\r\n\tBcc: x@evil.example\r\nAction: failed\r\n"
    found = read(report("Reporting-MTA: dns; x\r\n\r\n" + header_injection + evil))
    assert found.kind is Kind.FAILED and len(found.diagnostic) <= 300
    assert "\n" not in found.recipient and "\r" not in found.diagnostic


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage",
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary at all",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--b--\r\n",
    b"Subject: " + b"=?utf-8?b?" + b"A" * 10000 + b"?=\r\n\r\nbody",
])
def test_garbage_is_other_and_never_raises(raw):
    assert read(raw).kind in (Kind.OTHER, Kind.AUTO_REPLY)


def test_a_plain_message_is_other():
    assert read(b"From: a@b.example\r\nSubject: Thanks!\r\n\r\nWill pay tomorrow.\r\n") == \
        Report(Kind.OTHER, subject="Thanks!")
