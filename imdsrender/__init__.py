"""imdsrender: render configuration files from EC2 instance metadata (IMDSv2).

Kept tiny on purpose: ``imdsrender --version`` imports only this module, so
nothing heavy (urllib3, Jinja2, PyYAML) may be imported here.  Error kinds
live in :mod:`imdsrender.errors`, number and duration parsing in
:mod:`imdsrender.quantities`.
"""

__version__ = "0.1.0"
