"""Which driver errors mean "a backend is away", translated to :class:`BackendUnavailable`.

A backing service that restarts (PostgreSQL, Redis, Kafka) makes its client library raise
its own exceptions: a refused or dropped connection, a pool that cannot check one out, a
broker that does not answer. None of them is a bug in the request, so none should leave
an HTTP face as a 500 with a stack trace in the log: the caller should get 503 with
``Retry-After`` and try again once the service is back. :func:`as_unavailable` recognizes
them; the metadata database's sessions raise its result (``slipway.core.db.engine``), and
both faces (the control plane's error handler and the gateway) use it as the last line for
whatever reached a backend by another path (MLflow's store, a raw engine connection).

Driver modules are looked up in ``sys.modules`` rather than imported: an exception can
only be an instance of a class whose module is loaded, and the faces need not pay for
importing a client library they do not use.
"""

from __future__ import annotations

import sys

from slipway.core.errors import BackendUnavailable

# librdkafka's codes for "no broker answered" (transport, all brokers down, timeouts).
_KAFKA_AWAY = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_MSG_TIMED_OUT", "_RESOLVE"}
# PostgreSQL going away or not taking connections: admin / crash shutdown, cannot connect
# now (starting up, recovering), too many connections. (Class 08 is checked apart.)
_PG_AWAY = {"57P01", "57P02", "57P03", "53300"}
# SQLite's "retry later" errors; its other OperationalErrors (no such table, syntax) are bugs.
_SQLITE_BUSY = ("database is locked", "database table is locked", "unable to open database")


def _database(exc: BaseException) -> bool:
    sa = sys.modules.get("sqlalchemy.exc")
    if sa is not None:
        if isinstance(exc, sa.TimeoutError | sa.DisconnectionError):
            return True  # the pool could not hand out a connection in time
        if isinstance(exc, sa.DBAPIError):
            if exc.connection_invalidated:
                return True
            if isinstance(exc, sa.OperationalError | sa.InterfaceError):
                return _driver_away(exc.orig)
    return _driver_away(exc)


def _driver_away(exc: BaseException | None) -> bool:
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        if isinstance(exc, psycopg.InterfaceError):
            return True
        if isinstance(exc, psycopg.OperationalError):
            # No SQLSTATE: the client lost or could not open the connection. A deadlock or
            # a serialization failure is an OperationalError too, but not an absent server.
            state = exc.sqlstate
            return state is None or state.startswith("08") or state in _PG_AWAY
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc) for text in _SQLITE_BUSY)
    return False


def _redis(exc: BaseException) -> bool:
    redis = sys.modules.get("redis.exceptions")
    return redis is not None and isinstance(exc, redis.ConnectionError | redis.TimeoutError)


def _kafka(exc: BaseException) -> bool:
    kafka = sys.modules.get("confluent_kafka")
    if kafka is None or not isinstance(exc, kafka.KafkaException):
        return False
    error = exc.args[0] if exc.args else None
    return isinstance(error, kafka.KafkaError) and error.name() in _KAFKA_AWAY


def as_unavailable(exc: BaseException) -> BackendUnavailable | None:
    """The :class:`BackendUnavailable` that ``exc`` amounts to, or ``None`` when it is not
    a backend being away (a genuine error, which should stay what it is)."""
    if isinstance(exc, BackendUnavailable):
        return exc
    for backend, away in (("database", _database), ("redis", _redis), ("kafka", _kafka)):
        if away(exc):
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return BackendUnavailable(
                f"the {backend} backend is unavailable: {type(exc).__name__}: {first_line}"[:500],
                details={"backend": backend},
            )
    return None
