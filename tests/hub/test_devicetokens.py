"""The device tokens a hub remembers between calls: never one older than the database's."""

from edgestack.hub.devicetokens import DeviceTokens


def test_a_look_up_begun_before_a_token_changed_does_not_put_the_old_one_back() -> None:
    tokens = DeviceTokens()
    mark = tokens.mark()

    tokens.forget("motor-1")
    tokens.put("motor-1", "old", mark)

    assert tokens.get("motor-1") is None


def test_a_look_up_after_the_change_is_remembered_until_forgotten() -> None:
    tokens = DeviceTokens()
    tokens.forget("motor-1")

    tokens.put("motor-1", "new", tokens.mark())
    remembered = tokens.get("motor-1")
    tokens.forget("motor-1")

    assert remembered == "new"
    assert tokens.get("motor-1") is None


def test_what_is_remembered_expires() -> None:
    tokens = DeviceTokens(ttl_s=0)

    tokens.put("motor-1", "new", tokens.mark())

    assert tokens.get("motor-1") is None
