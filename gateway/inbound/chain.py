"""Chains route: an ordered table of (rule, action) rows. The first rule
that matches decides the action; a message no rule stops is accepted. A
row that replies names the builder of its reply."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import ModuleType

from gateway.handlers import reply
from gateway.handlers.reply import ReplyBuilder
from rules import RULES


class Action(str, Enum):
    ACCEPT = "accept"  # create the payment request
    COMMAND = "command"  # run the mail command
    REPLY = "reply"  # reject, telling the sender why
    DISCARD = "discard"  # drop silently (logged): answering would do harm


@dataclass(frozen=True)
class Row:
    rule: ModuleType
    action: Action
    reply: ReplyBuilder | None = None  # for REPLY: what to tell the sender


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str
    reply: ReplyBuilder | None = None


INCOMING: tuple[Row, ...] = (
    Row(RULES["loop-guard"], Action.DISCARD),
    Row(RULES["unknown-sender"], Action.DISCARD),
    Row(RULES["duplicate"], Action.DISCARD),
    Row(RULES["missing-level"], Action.REPLY, reply.missing_level),
    Row(RULES["is-command"], Action.COMMAND),
    Row(RULES["bad-directives"], Action.REPLY, reply.bad_directives),
)


def run(chain: tuple[Row, ...], message, context) -> Decision:
    for row in chain:
        if row.rule.check(message, context):
            return Decision(row.action, row.rule.name, row.reply)
    return Decision(Action.ACCEPT, "")
