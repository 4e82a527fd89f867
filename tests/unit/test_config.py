"""Beamline config validation: the shipped config is valid, bad values name key, value, range."""

import pytest

from insitu.beamline.config import ConfigError, load_config, parse_config


def test_shipped_sim_config_is_valid():
    config = load_config()
    assert config.simulated
    assert config.stage.model == "TS1500"
    assert config.film.gap_mm == 0.25


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"stage": {"model": "TS9000"}},
            r"stage\.model: 'TS9000' is not allowed: .*TS1500.*HFS600E",
        ),
        (
            {"stage": {"max_temperature_C": 2000}},
            r"stage\.max_temperature_C: 2000 is not allowed: .*less than or equal to 1500",
        ),
        (
            {"stage": {"model": "HFS600E", "max_temperature_C": 800}},
            r"max_temperature_C 800.0 C is above the HFS600E stage's range \(up to 600.0 C\)",
        ),
        (
            {
                "stage": {"model": "HFS600E", "max_temperature_C": 500},
                "safety": {"max_temperature_C": 1000},
            },
            r"safety\.max_temperature_C 1000\.0 C is above what the HFS600E stage can reach "
            r"plus 10 C \(610 C\): the watchdog's limit must be tighter than the stage model",
        ),
        (
            {"safety": {"max_rate_C_per_min": 900}},
            r"safety\.max_rate_C_per_min 900\.0 C/min is above the TS1500 stage's fastest rate "
            r"x 1\.5 \(225 C/min\)",
        ),
        ({"simulation": {"speedup": 0}}, r"simulation\.speedup: 0 is not allowed: .*greater than"),
        ({"film": {"thickness_um": -2}}, r"film\.thickness_um: -2 is not allowed"),
        ({"catalog": {"max_write_delay_s": 5}}, r"catalog\.max_write_delay_s: 5 is not allowed"),
        ({"stage": {"adress": "x"}}, r"stage\.adress: unknown key"),
    ],
)
def test_bad_values_name_key_value_and_allowed(data, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config(data)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read beamline config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(not_mapping)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
