"""aiosmtpd's SMTP protocol without its per-connection look-ups.

aiosmtpd 1.4.6 builds a protocol object for every connection, and its
``SMTP.__init__`` looks the class and the handler over each time to find
their ``smtp_*``, ``auth_*`` and ``handle_*`` methods (``inspect.getmembers``
and ``dir``, about 200 attributes, each fetched): under ``smtp-source``, a new
connection a message, that was a fifth of the event loop's time. Its
``_getaddr`` defines a ``typing.Protocol`` class on every MAIL and RCPT (an
ABC made and thrown away) before parsing the address with the email
package's header parser. And each command cancels the session's idle
timer and starts a new one.

:class:`QuickSMTP` builds the same object for the options the gateway uses
(``data_size_limit``, ``enable_SMTPUTF8``, ``decode_data``, ``hostname``,
``ident``): the names ``dir`` would list, with their short names (HELO
for smtp_HELO), are found once for a class and the
names of an object's own attributes (the same on every connection; a class
is not changed while it serves), and the methods then fetched by name as
before. ``_getaddr`` gives aiosmtpd's answers, remembered for the arguments
seen lately (a pure function of the argument). A command moves the idle
deadline; the one timer, when it goes off early, waits on. With any other
option, or another aiosmtpd version, the object is built by aiosmtpd's own
``__init__``. tests/test_smtp_protocol.py checks that both give the same
state, the same answers to long dialogues and the same idle timeout.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import socket
from asyncio import StreamReader, StreamReaderProtocol
from typing import Any

import aiosmtpd
import aiosmtpd.smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP, _AuthMechAttr
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError

# The version whose __init__ this one does the work of, step by step.
SAME_AS = "1.4.6"
_OPTIONS = frozenset({"data_size_limit", "enable_SMTPUTF8", "decode_data", "hostname", "ident"})
_log = aiosmtpd_smtp.log
# A timer may go off this early (the loop runs what is due within its clock's
# resolution): then the deadline counts as reached.
TIMER_SLACK = 0.01


# (class, prefix, the object's own attribute names) -> the names dir() would
# list with that prefix, each with its short name (aiosmtpd's: the prefix
# replaced by ""). The protocol's own attributes are the same on every
# connection, and so are the handler's: found once, then a dictionary look-up.
_NAMES: dict[tuple, tuple[tuple[str, str], ...]] = {}


def _dir_names(obj: Any, prefix: str) -> tuple[tuple[str, str], ...]:
    """``[(m, m.replace(prefix, "")) for m in dir(obj) if m.startswith(prefix)]``,
    remembered for the object's class and the names of its own attributes."""
    key = (obj if isinstance(obj, type) else type(obj), prefix, tuple(getattr(obj, "__dict__", ())))
    names = _NAMES.get(key)
    if names is None:
        names = tuple((name, name.replace(prefix, "")) for name in dir(obj) if name.startswith(prefix))
        if len(_NAMES) >= 256:
            _NAMES.clear()
        _NAMES[key] = names
    return names


class QuickSMTP(SMTP):
    """aiosmtpd's SMTP, built without looking the class over each time."""

    def __init__(self, handler: Any, **options: Any) -> None:
        if aiosmtpd.__version__ != SAME_AS or not _OPTIONS.issuperset(options):
            super().__init__(handler, **options)
            return
        # What SMTP.__init__ (1.4.6) does with these options and the others
        # left at their defaults, in its order.
        ident = options.get("ident")
        self.__ident__ = ident or aiosmtpd_smtp.__ident__
        try:  # what make_loop() returns inside the loop, without its warnings filter
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = aiosmtpd_smtp.make_loop()
        StreamReaderProtocol.__init__(
            self, StreamReader(loop=self.loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected, loop=self.loop)
        self.event_handler = handler
        data_size_limit = options.get("data_size_limit", aiosmtpd_smtp.DATA_SIZE_DEFAULT)
        assert data_size_limit is None or isinstance(data_size_limit, int)
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = options.get("enable_SMTPUTF8", False)
        self._decode_data = options.get("decode_data", False)
        self.command_size_limits.clear()
        hostname = options.get("hostname")
        self.hostname = hostname if hostname else socket.getfqdn()
        self.tls_context = None
        self.require_starttls = None  # tls_context and require_starttls
        self._timeout_duration = 300
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = True
        self._proxy_timeout = None
        self._auth_callback = aiosmtpd_smtp.login_always_fail
        self._authenticator = None
        self._auth_required = False
        auth_methods = {}
        for obj in (self, handler):
            for name, short in _dir_names(obj, "auth_"):
                method = getattr(obj, name)
                mechanism = getattr(method, "__auth_mechanism_name__", short.replace("__", "-"))
                auth_methods[mechanism] = _AuthMechAttr(method, obj is self)
        self._auth_methods = auth_methods
        if _log.isEnabledFor(logging.INFO):
            _log.info("Available AUTH mechanisms: " + " ".join(
                m + "(builtin)" if impl.is_builtin else m for m, impl in sorted(auth_methods.items())))
        self._handle_hooks = {short: getattr(handler, name) for name, short in _dir_names(handler, "handle_")}
        ehlo_hook = self._handle_hooks.get("EHLO")
        if ehlo_hook is None:
            self._ehlo_hook_ver = None
        else:
            parameters = len(inspect.signature(ehlo_hook).parameters)
            if parameters == 4:
                super().__init__(handler, **options)  # with its deprecation warning
                return
            if parameters != 5:
                raise RuntimeError("Unsupported EHLO Hook")
            self._ehlo_hook_ver = "new"
        self._smtp_methods = {short: getattr(self, name) for name, short in _dir_names(self, "smtp_")}
        self._enforce_call_limit = False
        self._built_quick()

    def _built_quick(self) -> None:
        """What a subclass adds to an object built here (not to one built by
        aiosmtpd's own __init__)."""

    # The idle timeout. aiosmtpd cancels its timer and starts a new one on
    # every command (a cancelled TimerHandle left in the loop's heap each
    # time); here a command only moves the deadline, and the timer, when it
    # goes off early, waits on for the rest. The session closes at the same
    # time: ``duration`` (the timeout, 300 s) after the last command.
    _timeout_deadline = 0.0
    _timer_when: float | None = None  # when the live timer goes off (None: none live)

    def _reset_timeout(self, duration: float | None = None) -> None:
        deadline = self.loop.time() + (duration or self._timeout_duration)
        self._timeout_deadline = deadline
        if self._timer_when is None or self._timer_when > deadline:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            self._start_timer(deadline)

    def _start_timer(self, when: float) -> None:
        self._timer_when = when
        self._timeout_handle = self.loop.call_at(when, self._timer)

    def _timer(self) -> None:
        self._timer_when = None
        if self._timeout_deadline - self.loop.time() > TIMER_SLACK:
            self._start_timer(self._timeout_deadline)
        else:
            self._timeout_cb()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's _getaddr (the address of a MAIL, RCPT or VRFY
        argument, and the rest), without making a class each time."""
        if not arg:
            return "", ""
        return _address(arg, self.local_part_limit)


@functools.lru_cache(maxsize=1024)  # a command line is at most ~550 octets: well under a MiB in all
def _address(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    addr = address.addr_spec
    localpart, _atsign, _domainpart = addr.rpartition("@")
    if local_part_limit and len(localpart) > local_part_limit:
        return None, None
    return addr, rest
