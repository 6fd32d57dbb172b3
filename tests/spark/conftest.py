"""One real Spark local[2] session for the Spark tier, started here and stopped at the end; the
engines find it running and use it (as they would under spark-submit). No network: it binds to 127.0.0.1."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    from pipeline.spark.session import spark_session

    with spark_session("local[2]", "framing-tests") as session:
        yield session
