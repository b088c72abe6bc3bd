"""Settings (imdsrender.yaml) and template resources (conf.d/*.yaml).

Parsing is pure apart from reading the files; every error names the file,
the line where known, and the field, in one line (ConfigError, exit 2).

- :mod:`.yamldoc`: YAML documents as nodes with line numbers, did-you-mean
- :mod:`.settings`: imdsrender.yaml -> Settings
- :mod:`.scan`: what one template reads, from its Jinja syntax tree
- :mod:`.templates`: the templates/ directory, include closures, derived keys
- :mod:`.resources`: conf.d/*.yaml -> Resources
"""

from ..errors import ConfigError
from ..model import ImdsSettings, Resource, Settings
from .resources import load_resources
from .settings import _IMDS_FIELDS, _SETTINGS_FIELDS, load_settings
from .templates import derive_keys, template_closure

__all__ = ["ConfigError", "ImdsSettings", "Resource", "Settings", "derive_keys",
           "load_resources", "load_settings", "template_closure",
           "_IMDS_FIELDS", "_SETTINGS_FIELDS"]
