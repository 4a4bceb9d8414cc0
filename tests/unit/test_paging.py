"""Unit tests of kit.paging: page sizes and page tokens of List RPCs (AIP-158)."""

import base64

import pytest

from kit.errors import InvalidArgument
from kit.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_TOKEN_CHARS,
    PageTokens,
    decode_page_token,
    encode_page_token,
    page_size,
)

FILTER = {"user_id": "u-1", "status": "SHIPPED"}


def violated_fields(error: InvalidArgument) -> list[str]:
    return [field for field, _ in error.violations]


def test_an_unset_page_size_gets_the_default() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE == 50


def test_a_page_size_within_bounds_is_kept() -> None:
    assert page_size(1) == 1
    assert page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE


def test_a_page_size_above_the_maximum_is_clamped_to_it() -> None:
    assert page_size(10_000) == MAX_PAGE_SIZE == 200


def test_a_service_may_choose_its_own_default_and_maximum() -> None:
    assert page_size(0, default=10, maximum=20) == 10
    assert page_size(30, default=10, maximum=20) == 20


def test_a_negative_page_size_is_an_invalid_page_size() -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1)
    assert violated_fields(caught.value) == ["page_size"]


def test_a_dict_cursor_comes_back_from_its_token() -> None:
    cursor = {"after": "2026-05-01T10:00:00Z", "id": "o-42", "n": 3}
    assert decode_page_token(encode_page_token(cursor, FILTER), FILTER) == cursor


def test_a_cassandra_paging_state_comes_back_from_its_token() -> None:
    state = bytes(range(256))
    assert decode_page_token(encode_page_token(state, FILTER), FILTER) == state


def test_no_next_page_encodes_as_an_empty_token_and_an_empty_token_is_the_first_page() -> None:
    assert encode_page_token(None, FILTER) == ""
    assert decode_page_token("", FILTER) is None


def test_a_token_is_url_safe_text() -> None:
    token = encode_page_token(b"\xfb\xff\xfe" * 20, FILTER)
    assert token.isascii()
    assert not set(token) & set("+/= ")


def test_the_order_in_which_the_filter_was_built_does_not_matter() -> None:
    token = encode_page_token({"id": "x"}, {"a": 1, "b": 2})
    assert decode_page_token(token, {"b": 2, "a": 1}) == {"id": "x"}


def test_a_token_used_with_a_different_filter_is_an_invalid_page_token() -> None:
    token = encode_page_token({"id": "x"}, FILTER)
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, {**FILTER, "status": "CANCELLED"})
    assert violated_fields(caught.value) == ["page_token"]
    assert "other filters" in caught.value.message


def test_a_token_issued_without_a_filter_is_refused_when_a_filter_is_given() -> None:
    token = encode_page_token({"id": "x"})
    with pytest.raises(InvalidArgument):
        decode_page_token(token, FILTER)


def _urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.mark.parametrize("position", [0, 1, 2, 9, 10, 20, -1])
def test_a_token_altered_anywhere_is_an_invalid_page_token(position: int) -> None:
    # Flip one bit of the decoded bytes: version, kind, fingerprint, cursor and MAC in turn.
    raw = bytearray(_raw(encode_page_token({"id": "o-42", "after": "2026-05-01"}, FILTER)))
    raw[position] ^= 0x01
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(_urlsafe(bytes(raw)), FILTER)
    assert violated_fields(caught.value) == ["page_token"]


def test_a_cursor_edited_by_hand_is_an_invalid_page_token() -> None:
    raw = _raw(encode_page_token({"id": "o-42"}, FILTER))
    edited = raw.replace(b"o-42", b"o-99")
    assert edited != raw
    with pytest.raises(InvalidArgument):
        decode_page_token(_urlsafe(edited), FILTER)


@pytest.mark.parametrize("token", ["not a token", "%%%", "AAAA", "é", "A" * 5])
def test_garbage_is_an_invalid_page_token(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, FILTER)
    assert violated_fields(caught.value) == ["page_token"]


def test_an_overlong_token_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token("A" * (MAX_TOKEN_CHARS + 1), FILTER)
    assert violated_fields(caught.value) == ["page_token"]


def test_a_token_signed_with_another_key_is_an_invalid_page_token() -> None:
    token = PageTokens(b"the other service's key").encode({"id": "x"}, FILTER)
    with pytest.raises(InvalidArgument):
        PageTokens(b"this service's key").decode(token, FILTER)
    assert PageTokens(b"the other service's key").decode(token, FILTER) == {"id": "x"}


def test_a_cursor_must_be_a_dict_or_bytes() -> None:
    with pytest.raises(TypeError):
        encode_page_token(["not", "a", "cursor"], FILTER)  # type: ignore[arg-type]


def test_a_token_signed_with_the_previous_key_still_reads_during_a_rotation() -> None:
    before = PageTokens(b"key of last month")
    token = before.encode({"after": 7}, FILTER)
    rotated = PageTokens(b"key of this month", previous=[b"key of last month"])
    assert rotated.decode(token, FILTER) == {"after": 7}
    # New tokens carry the new key: a deployment that dropped the old key still reads them.
    fresh = rotated.encode({"after": 8}, FILTER)
    assert PageTokens(b"key of this month").decode(fresh, FILTER) == {"after": 8}


def test_a_token_of_another_deployment_is_refused() -> None:
    token = PageTokens(b"their key").encode({"after": 7}, FILTER)
    with pytest.raises(InvalidArgument) as refused:
        PageTokens(b"our key", previous=[b"our old key"]).decode(token, FILTER)
    assert violated_fields(refused.value) == ["page_token"]


def test_a_started_server_signs_page_tokens_with_its_deployments_key() -> None:
    import asyncio

    from kit import paging, server
    from kit.config import ServerSettings

    settings = ServerSettings.from_env(
        "user",
        {
            "EMPORIUM_ENV": "production",
            "EMPORIUM_PAGE_TOKEN_KEY": "deployment key",
            "EMPORIUM_USER_GRPC_PORT": "0",
        },
    )

    async def started() -> str:
        grpc_server, _, _ = await server.start(settings, server.App(servicers=[], service_names=[]))
        await grpc_server.stop(None)
        return encode_page_token({"after": 1}, FILTER)

    token = asyncio.run(started())
    assert PageTokens(b"deployment key").decode(token, FILTER) == {"after": 1}
    paging.use_keys(paging._DEFAULT_KEY)
