import pathlib

import pytest


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> pathlib.Path:
    """A task cache shared by the tests, with synthetic-debug materialised once."""
    from nevis_bench.registry import STREAMS
    from nevis_bench.stream import StreamData

    folder = tmp_path_factory.mktemp("data")
    StreamData(STREAMS.get("synthetic-debug").factory(), 2020, folder, 32).prepare(progress=False)
    return folder
