"""The README's "Bring your own model" section runs as written: snnTorch → NIR → import → map → run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Bring your own model")[1].split("\n## ")[0]


@pytest.mark.slow
def test_readme_snntorch_to_bss2(tmp_path):
    blocks = re.findall(r"```(\w*)\n(.*?)```", _section(), re.S)
    python = next(code for lang, code in blocks if lang == "python")
    commands = [line.split() for lang, code in blocks if lang == "" for line in code.splitlines() if line.strip()]
    (tmp_path / "make_snn.py").write_text(python)
    bin_dir = Path(sys.executable).parent
    for command in commands:
        program = sys.executable if command[0] == "python" else str(bin_dir / command[0])
        done = subprocess.run([program, *command[1:]], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr)
    assert "mock:0: accuracy" in done.stdout and (tmp_path / "net.npz").is_file()
