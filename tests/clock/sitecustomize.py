"""A test clock for Dagster processes: the wall clock shifted by a fixed offset.

With this folder on PYTHONPATH and CANDLEBENCH_TEST_CLOCK_OFFSET_S set, every Python process
started in that environment (the daemon, its code servers, the runs it launches) lives at the
same shifted time: `time.time()`, Dagster's clock and candlebench's move together, so schedules
tick on the shifted day and every timestamp Dagster compares agrees. Monotonic clocks stay
real, and so does gRPC's view of the wall clock (it turns timeouts into absolute deadlines that
its C core checks against the real clock). Sandboxed test runs get a clean environment and
never see any of it.
"""

import os

_OFFSET = float(os.environ.get("CANDLEBENCH_TEST_CLOCK_OFFSET_S") or 0)

if _OFFSET:
    import datetime as _datetime
    import time as _time
    import types as _types

    _real = _types.ModuleType("time")
    _real.__dict__.update(_time.__dict__)
    _time.time = lambda: _real.time() + _OFFSET
    _time.time_ns = lambda: _real.time_ns() + int(_OFFSET * 1e9)

    import grpc._channel
    import grpc._common
    import grpc._server
    import grpc._utilities
    from grpc._cython import cygrpc

    for _module in (grpc._channel, grpc._common, grpc._server, grpc._utilities, cygrpc):
        _module.time = _real

    import dagster._time as _dagster_time  # its datetime.now() reads the C clock directly

    _dagster_time._mockable_get_current_datetime = lambda: _datetime.datetime.fromtimestamp(
        _time.time(), _datetime.UTC
    )
