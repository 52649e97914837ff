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


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch intra-op thread and restore the count after it (a module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` and says why)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
