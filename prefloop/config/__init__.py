"""Every setting of prefloop, on the ground floor: documented, validated dataclasses and one loader.

``load_config`` resolves defaults < ``prefloop.toml`` < environment < flags and builds one
``LoopConfig``; each section is a record whose fields carry their help and bounds, checked in
``__post_init__`` (so Python callers get the same checks as the file). This package imports
nothing of prefloop above ``errors``: names that need another room's registry (backend,
strategy) are checked in ``prefloop.loop.settings``.

    config = load_config()                 # ./prefloop.toml, the environment, the defaults
    config.model.k, config.backend.name    # typed: ModelConfig, BackendSettings
    ModelConfig(k=0)                       # SettingError: [model]: k must be at least 1, got 0
"""

from __future__ import annotations

from prefloop.config.acquisition import STRATEGY_PARAMETERS, AcquisitionSettings
from prefloop.config.backend import SECRET_ENV, URL_ENV, BackendSettings
from prefloop.config.dashboard import DashboardSettings
from prefloop.config.fields import SettingDeprecationWarning, SettingError, setting
from prefloop.config.load import (
    CONFIG_ENV,
    DB_ENV,
    DEFAULT_CONFIG,
    check_secrets,
    config_path,
    env_name,
    flag_name,
    load_config,
    setting_field,
)
from prefloop.config.model import ModelConfig, default_backbone
from prefloop.config.render import config_reference, is_secret_name, mask_url, masked, render_config, starter_config
from prefloop.config.sections import (
    AnnotatorSettings,
    MilestoneSettings,
    ObjectivesSettings,
    ServeSettings,
    combination_problem,
)
from prefloop.config.settings import DEFAULT_DB_URL, SECTIONS, LoopConfig, backend_settings

__all__ = [
    "CONFIG_ENV",
    "DB_ENV",
    "DEFAULT_CONFIG",
    "DEFAULT_DB_URL",
    "SECRET_ENV",
    "SECTIONS",
    "STRATEGY_PARAMETERS",
    "URL_ENV",
    "AcquisitionSettings",
    "AnnotatorSettings",
    "BackendSettings",
    "DashboardSettings",
    "LoopConfig",
    "MilestoneSettings",
    "ModelConfig",
    "ObjectivesSettings",
    "ServeSettings",
    "SettingDeprecationWarning",
    "SettingError",
    "backend_settings",
    "check_secrets",
    "combination_problem",
    "config_path",
    "config_reference",
    "default_backbone",
    "env_name",
    "flag_name",
    "is_secret_name",
    "load_config",
    "mask_url",
    "masked",
    "render_config",
    "setting",
    "setting_field",
    "starter_config",
]
