"""The one registry type every extension point uses."""

import pytest

from cyclestyle.registry import Registry, RegistryError


class NamedError(ValueError):
    pass


def test_registry_keeps_order_and_both_forms_register():
    reg: Registry[object] = Registry("widget")

    @reg.register("b")
    def b():
        return 2

    reg.register("a", 1)
    assert reg.names() == ("b", "a")
    assert reg.get("a") == 1 and reg.get("b") is b
    assert "a" in reg and "c" not in reg and len(reg) == 2
    assert list(reg) == ["b", "a"] and reg.values() == (b, 1)


def test_registry_unknown_name_is_one_line_listing_the_registered_ones():
    reg = Registry("widget", NamedError)
    reg.register("x", 1)
    reg.register("y", 2)
    with pytest.raises(NamedError) as info:
        reg.get("z")
    assert str(info.value) == "unknown widget 'z' (registered: x, y)"


def test_registry_refuses_a_name_twice_and_unregisters():
    reg = Registry("widget")
    reg.register("x", 1)
    with pytest.raises(RegistryError, match="already"):
        reg.register("x", 2)
    reg.unregister("x")
    reg.unregister("x")  # absent: nothing to do
    assert reg.names() == ()
