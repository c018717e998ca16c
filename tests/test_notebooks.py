"""The notebooks run top to bottom against the shipped data."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


def test_notebooks_match_their_sources():
    """The .ipynb files are generated from build_notebooks.py; they must not drift apart."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NB_DIR / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, cells in mod.NOTEBOOKS.items():
        nb = nbformat.read(NB_DIR / name, as_version=4)
        assert [c.source for c in nb.cells] == [c.source for c in cells], name


# What a fresh kernel has: no names of the notebook before (``%reset -f`` also drops the output history),
# no open figures, the notebook's own folder as working directory.
FRESH = """%reset -f
import os as _os, sys as _sys
_os.chdir({path!r})
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
del _os, _sys
"""


@pytest.fixture(scope="module")
def kernel():
    """One Jupyter kernel for the module's notebooks (starting a kernel and importing geoplan, pandas and
    geopandas into it costs some 3 s of CPU per notebook); each notebook starts in it with an empty namespace
    (FRESH). A kernel that died is restarted."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    # the kernel is a subprocess: make this checkout importable there even without an installed geoplan
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(NB_DIR.parent), os.environ.get("PYTHONPATH")]))}
    km.start_kernel(env=env)
    try:
        yield km
    finally:
        km.shutdown_kernel(now=True)


def _fresh(km, folder: Path) -> None:
    if not km.is_alive():
        km.restart_kernel(now=True)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        reply = kc.execute_interactive(FRESH.format(path=str(folder)), timeout=120, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, kernel):
    nb = nbformat.read(path, as_version=4)
    _fresh(kernel, tmp_path)
    client = NotebookClient(nb, km=kernel, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
