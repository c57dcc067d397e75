"""Chains route: an ordered table of (rule, action) rows. The first rule
that matches decides the action; a message no rule stops is accepted."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import ModuleType

from rules import RULES


class Action(str, Enum):
    ACCEPT = "accept"  # create the payment request
    COMMAND = "command"  # run the mail command
    REPLY = "reply"  # reject, telling the sender why
    REJECT_SMTP = "reject-smtp"  # refuse during the SMTP dialogue
    DISCARD = "discard"  # drop silently (logged): answering would do harm


@dataclass(frozen=True)
class Row:
    rule: ModuleType
    action: Action


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str


INCOMING: tuple[Row, ...] = (
    Row(RULES["loop-guard"], Action.DISCARD),
    Row(RULES["unknown-sender"], Action.DISCARD),
    Row(RULES["duplicate"], Action.DISCARD),
    Row(RULES["missing-level"], Action.REPLY),
    Row(RULES["is-command"], Action.COMMAND),
    Row(RULES["bad-directives"], Action.REPLY),
)


def run(chain: tuple[Row, ...], message, context) -> Decision:
    for row in chain:
        if row.rule.check(message, context):
            return Decision(row.action, row.rule.name)
    return Decision(Action.ACCEPT, "")
