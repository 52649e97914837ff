"""The core's imports point down the pipeline, and only the registry reaches the plug-in folders."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "nevis_bench"

# What each part of the core may import from the package (besides itself); docs/design.md, "Layers".
ALLOWED = {
    "protocol": set(),
    "errors": set(),
    "registry": {"errors"},
    "data": {"protocol", "errors"},
    "stream": {"data", "protocol", "errors"},
    # opening streams: a registered name with its checked options, or a user's stream file
    "stream_file": {"data", "stream", "protocol", "errors", "registry"},
    "stream_options": {"stream", "stream_file", "data", "protocol", "errors", "registry"},
    "records": {"protocol", "errors"},
    "learner_kit": {"data", "stream", "records", "protocol", "errors", "registry"},
    "run": {"data", "stream", "stream_options", "records", "learner_kit", "protocol", "errors", "registry"},
    "conformance": {"run", "data", "stream", "stream_options", "records", "learner_kit", "protocol", "errors",
                    "registry"},
    "reports": {"run", "records", "protocol", "errors"},
}


def _imports(file: pathlib.Path) -> set[str]:
    """Every ``nevis_bench.X`` module named by an import anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "nevis_bench":
            found.update(f"nevis_bench.{alias.name}" for alias in node.names if not alias.name.startswith("__"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nevis_bench."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("nevis_bench"))
    return found


def _part(file: pathlib.Path) -> str:
    relative = file.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_imports_point_down_the_pipeline(part):
    files = [f for f in PACKAGE.rglob("*.py") if _part(f) == part]
    assert files, part
    for file in files:
        for module in _imports(file):
            target = module.split(".")[1] if module.count(".") else ""
            assert target == part or target in ALLOWED[part], f"{file.relative_to(PACKAGE)} imports {module}"


def test_only_the_registry_reaches_the_plug_in_folders():
    for file in PACKAGE.rglob("*.py"):
        plugins = {m for m in _imports(file) if m.split(".")[1:2] in (["learners"], ["streams"])}
        assert not plugins, f"{file.relative_to(PACKAGE)} imports {plugins}"
