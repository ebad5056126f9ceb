"""number_facts works a number's type out once; it must say what libphonenumber's own
is_valid_number and time_zones_for_number say, for every kind of number."""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import timezone

from dialer_worker.compliance import number_facts


def reference(number: str) -> tuple[bool, tuple[str, ...]]:
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return False, ()
    if not phonenumbers.is_valid_number(parsed):
        return False, ()
    return True, tuple(timezone.time_zones_for_number(parsed))


def sample() -> list[str]:
    """Random national numbers of many lengths in countries with one zone, several zones, mobile
    ranges that are or are not geographical, and non-geographic codes; plus libphonenumber's
    own example of each type for every region."""
    rng = random.Random(7)
    codes = ["1", "7", "33", "44", "49", "52", "55", "61", "62", "81", "86", "91", "800", "808", "870", "881", "979"]
    numbers = [f"+{rng.choice(codes)}{rng.randrange(10**7, 10**11)}" for _ in range(1500)]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                     phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.VOIP):  # fmt: skip
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return numbers + ["+1", "not a number", "+999123456789"]


def test_number_facts_agrees_with_libphonenumber_for_every_kind_of_number():
    numbers = sample()
    facts = {n: number_facts(n) for n in numbers}
    assert facts == {n: reference(n) for n in numbers}
    valid = [n for n, (ok, _) in facts.items() if ok]
    # The sample reaches every path: invalid, geographical, and country-level zones.
    assert len(valid) > 500 and len(numbers) - len(valid) > 500
    assert any(len(zones) > 1 for _, zones in facts.values())
