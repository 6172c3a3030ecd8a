"""Stacking with ``opentelemetry-instrumentation-dbapi`` when the connection is already governed.

``opentelemetry.instrumentation.dbapi.instrument_connection(governed)`` cannot help: it refuses any wrapt
proxy ("Connection already instrumented") and hands the same object back, tracing nothing - and a governed
connection is a wrapt proxy. Instead, one call::

    conn = governed_db.wrap(raw, ...)
    governed_db.instrument_dbapi(conn, tracer_provider=provider)   # spans of the dbapi instrumentation

instruments the driver's connection *inside* the governed one, so each statement's dbapi span is a child of
governed_db's span (the order ``wrap(instrument_connection(raw))`` gives). Cursors made afterwards are traced.
The other order - the instrumentation outside - is ``trace_integration`` on ``governed_db.govern_module(...)``.
"""

from __future__ import annotations

from typing import Any

from governed_db.errors import ConfigurationError

#: governed_db dialect -> OpenTelemetry ``db.system`` for the instrumentation's spans
_SYSTEMS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb",
            "sqlite": "sqlite", "duckdb": "duckdb"}  # fmt: skip


def instrument_dbapi(governed: Any, *, name: str = "opentelemetry.instrumentation.dbapi",
                     database_system: str | None = None, **kwargs: Any) -> Any:  # fmt: skip
    """Trace a governed connection with ``opentelemetry-instrumentation-dbapi``, its spans under ours.

    ``kwargs`` go to ``opentelemetry.instrumentation.dbapi.instrument_connection`` (``tracer_provider``,
    ``capture_parameters``, ``enable_commenter``, ...). Returns ``governed`` (instrumented in place); a second
    call does nothing.
    """
    gov = getattr(governed, "governor", None)
    if gov is None or not hasattr(governed, "__wrapped__"):
        raise ConfigurationError(
            f"instrument_dbapi() takes a governed connection (from governed_db.wrap), got {type(governed).__name__}; "
            "for a plain connection use opentelemetry.instrumentation.dbapi.instrument_connection"
        )
    try:
        from opentelemetry.instrumentation.dbapi import TracedConnectionProxy
        from opentelemetry.instrumentation.dbapi import instrument_connection as otel_instrument
    except ImportError as e:
        raise ConfigurationError(
            f"instrument_dbapi() needs opentelemetry-instrumentation-dbapi ({e}); pip install it"
        ) from None
    inner = governed.__wrapped__
    if isinstance(inner, TracedConnectionProxy):
        return governed
    system = database_system or _SYSTEMS.get(gov.dialect, gov.dialect)
    traced = otel_instrument(name, inner, system, **kwargs)
    # the governed proxy now calls the traced connection, and makes its own span current around each call
    # (Governor.nested) so the instrumentation's span becomes its child
    governed.__wrapped__ = traced
    gov.raw = traced
    gov.nested = True
    return governed


__all__ = ["instrument_dbapi"]
