"""The one place that reads configuration: the tracking config (`tracking`), its subjects and
their adapters' settings (`subjects`), typed fields (`fields`) and where state lives (`paths`)."""

from pipeline.config.fields import ConfigError, Price, Setting
from pipeline.config.paths import DEFAULTS, PROJECT_ROOT, cli_cache_root, config_path, home, pin_demo_config
from pipeline.config.subjects import Subject
from pipeline.config.tracking import LocationSettings, TrackingConfig, load_config, location_settings

__all__ = [
    "DEFAULTS",
    "PROJECT_ROOT",
    "ConfigError",
    "LocationSettings",
    "Price",
    "Setting",
    "Subject",
    "TrackingConfig",
    "cli_cache_root",
    "config_path",
    "home",
    "load_config",
    "location_settings",
    "pin_demo_config",
]
