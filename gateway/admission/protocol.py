"""aiosmtpd's SMTP protocol without its per-connection look-ups.

aiosmtpd 1.4.6 builds a protocol object for every connection, and its
``SMTP.__init__`` looks the class and the handler over each time to find
their ``smtp_*``, ``auth_*`` and ``handle_*`` methods (``inspect.getmembers``
and ``dir``, about 200 attributes, each fetched): under ``smtp-source``, a new
connection a message, that was a fifth of the event loop's time. Its
``_getaddr`` defines a ``typing.Protocol`` class on every MAIL and RCPT (an
ABC made and thrown away) before parsing the address with the email
package's header parser.

:class:`QuickSMTP` builds the same object for the options the gateway uses
(``data_size_limit``, ``enable_SMTPUTF8``, ``decode_data``, ``hostname``,
``ident``): the attribute names are looked up once a class, and only the
handler's own instance attributes are looked at again each time, so the
methods found are the ones ``dir`` would find. ``_getaddr`` gives the same
answers, remembering them for the arguments seen lately (a pure function
of the argument). With any other option, or another aiosmtpd version, it
is aiosmtpd's own ``__init__``. tests/test_smtp_protocol.py checks that
both ways give the same state and the same answers to a long dialogue.
"""

from __future__ import annotations

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


@functools.cache
def _names(cls: type, prefix: str) -> tuple[str, ...]:
    """The names ``dir`` finds on instances of ``cls`` that start with
    ``prefix``, in its order (sorted), leaving out instance attributes."""
    return tuple(name for name in dir(cls) if name.startswith(prefix))


def _dir_names(obj: Any, prefix: str) -> list[str]:
    """``[m for m in dir(obj) if m.startswith(prefix)]``: the class's names
    (once a class) and the object's own attributes (each time)."""
    if isinstance(obj, type):  # a class as the handler: dir() lists the class's own
        return [name for name in dir(obj) if name.startswith(prefix)]
    names = _names(type(obj), prefix)
    own = [name for name in getattr(obj, "__dict__", ()) if name.startswith(prefix) and name not in names]
    return sorted((*names, *own)) if own else list(names)


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
            for name in _dir_names(obj, "auth_"):
                method = getattr(obj, name)
                mechanism = getattr(method, "__auth_mechanism_name__", name.replace("auth_", "").replace("__", "-"))
                auth_methods[mechanism] = _AuthMechAttr(method, obj is self)
        self._auth_methods = auth_methods
        if _log.isEnabledFor(logging.INFO):
            _log.info("Available AUTH mechanisms: " + " ".join(
                m + "(builtin)" if impl.is_builtin else m for m, impl in sorted(auth_methods.items())))
        self._handle_hooks = {name.replace("handle_", ""): getattr(handler, name)
                              for name in _dir_names(handler, "handle_")}
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
        self._smtp_methods = {name.replace("smtp_", ""): getattr(self, name) for name in _dir_names(self, "smtp_")}
        self._enforce_call_limit = False

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
