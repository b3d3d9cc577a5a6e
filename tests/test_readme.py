"""The README's quick start must run as written."""

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_quick_start_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert "(2, 64, 64, 3)" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "quickstart.keras")
    assert namespace["restored"].g_optimizer.iterations.numpy() == 8 * 3
    assert set(namespace["history"].history) == {"d_loss", "g_gan", "g_l1", "g_total"}


def test_readme_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]" && python -m pix2pix_tf.train' in text
    assert 'pip install -e ".[dev]"' in ci
    assert "python -m pytest -q tests" in text and "python -m pytest -q tests" in ci
