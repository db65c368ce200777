"""server/inputs.py: each class of malformed body or path integer is refused by name; good
input passes unchanged. (The same classes against every route of a real server are in
tests/reliability/test_api_security.py.)"""

from __future__ import annotations

import pytest

from realm_kernel.server.inputs import MAX_DEPTH, BadInput, depth, json_object, only, whole_number

BAD_BODIES = [
    (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
    (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "nested too deeply"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"step": ', "not JSON"),
    (b"[1]", "must be a JSON object, got list"),
    (b"null", "must be a JSON object, got NoneType"),
    (b'{"t": NaN}', "has NaN"),
    (b'{"t": [Infinity]}', "has Infinity"),
    (b'{"t": -Infinity}', "has -Infinity"),
    (b'{"t": 1e400}', "'1e400', out of range for a double"),
    (b'{"t": ' + b"9" * 5000 + b"}", "out of range"),
    (b'{"t": 9223372036854775808}', "out of range"),
    (b'{"t": -9223372036854775808}', "out of range"),
]


@pytest.mark.parametrize(("raw", "fragment"), BAD_BODIES)
def test_malformed_bodies_are_refused_by_name(raw, fragment):
    with pytest.raises(BadInput, match="request body") as err:
        json_object(raw)
    assert fragment in str(err.value)
    assert len(str(err.value)) < 300, "a huge input is never echoed whole"


def test_good_bodies_pass_unchanged():
    assert json_object(b"") == {} and json_object(b"  \n") == {}
    body = b'{"step": 9223372036854775807, "t": 0.5, "m": [{"role": "user"}], "s": "\\u0663"}'
    assert json_object(body) == {"step": 2**63 - 1, "t": 0.5, "m": [{"role": "user"}], "s": "\u0663"}
    nested = b'{"a":' * (MAX_DEPTH - 1) + b"1" + b"}" * (MAX_DEPTH - 1)
    assert depth(json_object(nested)) == MAX_DEPTH - 1


@pytest.mark.parametrize("text", ["\u0663", "\u00b2", "-1", "1.0", " 1", "", "9" * 40, "1e3", "0x10"])
def test_path_integers_are_ascii_digits_in_range(text):
    with pytest.raises(BadInput, match="step must be a non-negative integer"):
        whole_number(text, "step", 10**18)


def test_path_integers_in_range_pass():
    assert whole_number("0", "step") == 0 and whole_number("1000", "limit", 1000) == 1000
    with pytest.raises(BadInput, match="at most 1000"):
        whole_number("1001", "limit", 1000)


def test_only_names_the_stray_fields_and_where():
    assert only({"step": 1}, {"step", "host"}, "POST oracle/load") == {"step": 1}
    with pytest.raises(BadInput, match=r"unknown field\(s\) \['hots'\] in the body of POST "
                                       r"oracle/load; expected host, step"):
        only({"step": 1, "hots": "x"}, {"step", "host"}, "POST oracle/load")
