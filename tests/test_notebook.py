"""The tutorial notebook runs top to bottom (tiny settings, offline)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "pix2pix.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    assert "def train_step" not in source and "class Pix2Pix" not in source  # public API only


def run_twice(path, folder):
    """Executes the notebook twice in the same folder, as a user pressing "Run all" again does;
    returns the second run. It must write only under its own notebook_outputs/ folder."""
    for _ in range(2):
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
    assert sorted(p.name for p in folder.iterdir()) == ["notebook_outputs"]
    return notebook


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("PIX2PIX_NOTEBOOK_PTH",
                       str(Path(__file__).parent / "fixtures" / "torch_unet" / "unet_zip.pth"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    runtime = Path(os.environ.get("PIX2PIX_TF_ORT_WEB") or ROOT / ".ci" / "node")
    if runtime.is_dir():  # else the page loads the runtime from its CDN address
        monkeypatch.setenv("PIX2PIX_NOTEBOOK_ORT_WEB", str(runtime))
    notebook = run_twice(NOTEBOOK, tmp_path)
    text = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert "receptive field 70x70" in text
    assert "paper mode, two calls differ by" in text
    assert "tflite_int8" in text and "onnx" in text
    assert "'name': 'unet_zip'" in text and "exported the converted model: tflite_float32, onnx" in text
    out = tmp_path / "notebook_outputs" / "pix2pix"
    assert (out / "pix2pix.keras").is_file()
    assert "web page in" in text and "the page: http://127.0.0.1:" in text
    assert (out / "exports" / "web" / "index.html").is_file()
    # fine-tuning from the saved model (section 9), and the Hub folder written offline
    assert "Starting from" in text and "fine-tuned model:" in text
    assert "Hub folder: ['README.md', " in text
    assert {"README.md", "config.json", "metadata.json", "model.weights.h5", "sample.png"} <= {
        p.name for p in (out / "hub").iterdir()}
    assert (out / "hub" / "README.md").read_text().startswith("---\nlibrary_name: keras")
    assert any("IFrame" in str(o.get("data", {})) or "iframe" in str(o.get("data", {}))
               for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    for version in ("1", "2"):  # "Run all" twice: the second export is the next version
        assert (out / "exports" / "saved_model" / "pix2pix" / version / "saved_model.pb").is_file()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # pairs, jitter, progress grid, loss curves, result


INSTRUCT_NOTEBOOK = NOTEBOOK.parent / "instruct.ipynb"


def test_instruct_notebook_is_committed_without_outputs():
    notebook = nbformat.read(INSTRUCT_NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_instruct_notebook_trains_and_edits(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = run_twice(INSTRUCT_NOTEBOOK, tmp_path)
    text = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert "held out: 'take the color out'" in text
    assert "chance (1/K, K=8)" in text and "copy the input" in text
    assert "reloaded model edits identically: True" in text
    assert "served with an instruction string: (1, 16, 16, 3)" in text
    assert (tmp_path / "notebook_outputs" / "instruct" / "exports" / "pix2pix_vocabulary.txt").is_file()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # examples, edits, confusion matrix
