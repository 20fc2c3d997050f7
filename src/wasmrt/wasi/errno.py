"""WASI preview 1 ``errno`` values and the host ``OSError`` -> errno mapping.

Invariants:
- Values are the witx ``errno`` enum of ``wasi_snapshot_preview1`` (u16).
- ``WasiErrno`` is the one exception host-function bodies raise to return an
  errno to the guest; the dispatcher turns it into the call's result and
  nothing else escapes as an errno.
- ``from_oserror`` maps a host ``OSError`` by its POSIX ``errno`` name, so the
  mapping is the same on every host; unknown codes become ``EIO``.
"""

from __future__ import annotations

import errno as _host

__all__ = ["Errno", "WasiErrno", "from_oserror"]


class Errno:
    """The ``errno`` enum (``Errno.NOENT == 44``)."""

    SUCCESS = 0
    TOOBIG = 1
    ACCES = 2
    ADDRINUSE = 3
    ADDRNOTAVAIL = 4
    AFNOSUPPORT = 5
    AGAIN = 6
    ALREADY = 7
    BADF = 8
    BADMSG = 9
    BUSY = 10
    CANCELED = 11
    CHILD = 12
    CONNABORTED = 13
    CONNREFUSED = 14
    CONNRESET = 15
    DEADLK = 16
    DESTADDRREQ = 17
    DOM = 18
    DQUOT = 19
    EXIST = 20
    FAULT = 21
    FBIG = 22
    HOSTUNREACH = 23
    IDRM = 24
    ILSEQ = 25
    INPROGRESS = 26
    INTR = 27
    INVAL = 28
    IO = 29
    ISCONN = 30
    ISDIR = 31
    LOOP = 32
    MFILE = 33
    MLINK = 34
    MSGSIZE = 35
    MULTIHOP = 36
    NAMETOOLONG = 37
    NETDOWN = 38
    NETRESET = 39
    NETUNREACH = 40
    NFILE = 41
    NOBUFS = 42
    NODEV = 43
    NOENT = 44
    NOEXEC = 45
    NOLCK = 46
    NOLINK = 47
    NOMEM = 48
    NOMSG = 49
    NOPROTOOPT = 50
    NOSPC = 51
    NOSYS = 52
    NOTCONN = 53
    NOTDIR = 54
    NOTEMPTY = 55
    NOTRECOVERABLE = 56
    NOTSOCK = 57
    NOTSUP = 58
    NOTTY = 59
    NXIO = 60
    OVERFLOW = 61
    OWNERDEAD = 62
    PERM = 63
    PIPE = 64
    PROTO = 65
    PROTONOSUPPORT = 66
    PROTOTYPE = 67
    RANGE = 68
    ROFS = 69
    SPIPE = 70
    SRCH = 71
    STALE = 72
    TIMEDOUT = 73
    TXTBSY = 74
    XDEV = 75
    NOTCAPABLE = 76


class WasiErrno(Exception):  # noqa: N818 - an errno result, not an error of the host
    """Return ``code`` to the guest from a WASI function."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


_BY_NAME = {
    "E2BIG": Errno.TOOBIG,
    "EACCES": Errno.ACCES,
    "EADDRINUSE": Errno.ADDRINUSE,
    "EADDRNOTAVAIL": Errno.ADDRNOTAVAIL,
    "EAFNOSUPPORT": Errno.AFNOSUPPORT,
    "EAGAIN": Errno.AGAIN,
    "EWOULDBLOCK": Errno.AGAIN,
    "EALREADY": Errno.ALREADY,
    "EBADF": Errno.BADF,
    "EBADMSG": Errno.BADMSG,
    "EBUSY": Errno.BUSY,
    "ECANCELED": Errno.CANCELED,
    "ECHILD": Errno.CHILD,
    "ECONNABORTED": Errno.CONNABORTED,
    "ECONNREFUSED": Errno.CONNREFUSED,
    "ECONNRESET": Errno.CONNRESET,
    "EDEADLK": Errno.DEADLK,
    "EDESTADDRREQ": Errno.DESTADDRREQ,
    "EDOM": Errno.DOM,
    "EDQUOT": Errno.DQUOT,
    "EEXIST": Errno.EXIST,
    "EFAULT": Errno.FAULT,
    "EFBIG": Errno.FBIG,
    "EHOSTUNREACH": Errno.HOSTUNREACH,
    "EIDRM": Errno.IDRM,
    "EILSEQ": Errno.ILSEQ,
    "EINPROGRESS": Errno.INPROGRESS,
    "EINTR": Errno.INTR,
    "EINVAL": Errno.INVAL,
    "EIO": Errno.IO,
    "EISCONN": Errno.ISCONN,
    "EISDIR": Errno.ISDIR,
    "ELOOP": Errno.LOOP,
    "EMFILE": Errno.MFILE,
    "EMLINK": Errno.MLINK,
    "EMSGSIZE": Errno.MSGSIZE,
    "EMULTIHOP": Errno.MULTIHOP,
    "ENAMETOOLONG": Errno.NAMETOOLONG,
    "ENETDOWN": Errno.NETDOWN,
    "ENETRESET": Errno.NETRESET,
    "ENETUNREACH": Errno.NETUNREACH,
    "ENFILE": Errno.NFILE,
    "ENOBUFS": Errno.NOBUFS,
    "ENODEV": Errno.NODEV,
    "ENOENT": Errno.NOENT,
    "ENOEXEC": Errno.NOEXEC,
    "ENOLCK": Errno.NOLCK,
    "ENOLINK": Errno.NOLINK,
    "ENOMEM": Errno.NOMEM,
    "ENOMSG": Errno.NOMSG,
    "ENOPROTOOPT": Errno.NOPROTOOPT,
    "ENOSPC": Errno.NOSPC,
    "ENOSYS": Errno.NOSYS,
    "ENOTCONN": Errno.NOTCONN,
    "ENOTDIR": Errno.NOTDIR,
    "ENOTEMPTY": Errno.NOTEMPTY,
    "ENOTRECOVERABLE": Errno.NOTRECOVERABLE,
    "ENOTSOCK": Errno.NOTSOCK,
    "ENOTSUP": Errno.NOTSUP,
    "EOPNOTSUPP": Errno.NOTSUP,
    "ENOTTY": Errno.NOTTY,
    "ENXIO": Errno.NXIO,
    "EOVERFLOW": Errno.OVERFLOW,
    "EOWNERDEAD": Errno.OWNERDEAD,
    "EPERM": Errno.PERM,
    "EPIPE": Errno.PIPE,
    "EPROTO": Errno.PROTO,
    "EPROTONOSUPPORT": Errno.PROTONOSUPPORT,
    "EPROTOTYPE": Errno.PROTOTYPE,
    "ERANGE": Errno.RANGE,
    "EROFS": Errno.ROFS,
    "ESPIPE": Errno.SPIPE,
    "ESRCH": Errno.SRCH,
    "ESTALE": Errno.STALE,
    "ETIMEDOUT": Errno.TIMEDOUT,
    "ETXTBSY": Errno.TXTBSY,
    "EXDEV": Errno.XDEV,
}

_HOST_TO_WASI = {
    getattr(_host, name): code for name, code in _BY_NAME.items() if hasattr(_host, name)
}


def from_oserror(err: OSError) -> int:
    """The WASI errno for a host ``OSError``."""
    if err.errno is None:
        return Errno.IO
    return _HOST_TO_WASI.get(err.errno, Errno.IO)
