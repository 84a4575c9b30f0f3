import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning.amounts import UNIT, AmountError, format_flk, parse_flk
from lightning.crypto import BadSignature, Domain, SigningKey, parse_public_key
from lightning.errors import LightningError


def test_sign_verify_with_domain_separation():
    key = SigningKey.generate()
    sig = key.sign(Domain.TRANSACTION, b"hello")
    key.public.verify(Domain.TRANSACTION, b"hello", sig)
    with pytest.raises(BadSignature):
        key.public.verify(Domain.BROADCAST, b"hello", sig)
    with pytest.raises(BadSignature):
        key.public.verify(Domain.TRANSACTION, b"hellO", sig)
    with pytest.raises(BadSignature):
        key.public.verify(Domain.TRANSACTION, b"hello", sig[:-1])
    other = SigningKey.generate()
    assert not other.public.is_valid(Domain.TRANSACTION, b"hello", sig)


def test_domain_tags_are_unique():
    values = [d.value for d in Domain]
    assert len(values) == len(set(values))


def test_seed_round_trip_and_repr_hides_secret():
    key = SigningKey.generate()
    again = SigningKey(key.seed)
    assert again.public == key.public
    assert key.seed.hex() not in repr(key)


def test_parse_public_key():
    key = SigningKey.generate().public
    assert parse_public_key(key.hex) == key
    assert parse_public_key("0x" + key.hex.upper()) == key
    for bad in ["zz", key.hex[:-2], key.hex + "00"]:
        with pytest.raises(LightningError):
            parse_public_key(bad)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("1", UNIT),
        ("0.5", UNIT // 2),
        ("2.000000000000000001", 2 * UNIT + 1),
        ("1_000", 1000 * UNIT),
        (".25", UNIT // 4),
    ],
)
def test_parse_flk_exact(text, units):
    assert parse_flk(text) == units


@pytest.mark.parametrize("text", ["-1", "1e3", "", ".", "1.2.3", "0.0000000000000000001", "abc", "+1", "nan", "inf"])
def test_parse_flk_rejects(text):
    with pytest.raises(AmountError):
        parse_flk(text)


@given(st.integers(min_value=0, max_value=10**30))
def test_format_parse_round_trip(units):
    assert parse_flk(format_flk(units)) == units
