"""The transport stays light: importing the client loads neither Jinja2 nor PyYAML."""

from __future__ import annotations

import subprocess
import sys

CHECK = ("import sys\n"
         "import imdsrender.imds.client\n"
         "heavy = sorted(m for m in ('jinja2', 'yaml', 'imdsrender.config', 'imdsrender.render')\n"
         "               if m in sys.modules)\n"
         "print(','.join(heavy))\n")


def test_client_import_loads_neither_jinja2_nor_yaml() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""
