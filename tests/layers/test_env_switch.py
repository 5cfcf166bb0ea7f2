import pytest

from focal_eiou_d2.layers.env_switch import env_switch


@pytest.mark.parametrize(
    "value, on",
    [(None, True), ("1", True), ("on", True), ("", True), ("0", False), ("false", False)]
    + [("False", False), ("OFF", False), ("off", False)],
)
def test_switch_values(value, on, monkeypatch):
    if value is None:
        monkeypatch.delenv("FOCAL_EIOU_D2_TEST_SWITCH", raising=False)
    else:
        monkeypatch.setenv("FOCAL_EIOU_D2_TEST_SWITCH", value)
    assert env_switch("FOCAL_EIOU_D2_TEST_SWITCH") is on
