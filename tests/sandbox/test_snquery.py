"""The encoded-query parser on its own: precedence, escapes, dates, invalid parts."""

from integrations.sandbox.snquery import Condition, EncodedQuery


def _match(query: str, row: dict[str, str]) -> bool:
    return EncodedQuery.parse(query).matches(row.get)


def test_or_binds_tighter_than_and():
    query = "a=1^b=2^ORb=3"
    assert _match(query, {"a": "1", "b": "3"})
    assert not _match(query, {"a": "2", "b": "3"})


def test_nq_starts_an_alternative_query():
    query = "a=1^b=2^NQa=9"
    assert _match(query, {"a": "9", "b": "0"})
    assert not _match(query, {"a": "1", "b": "0"})


def test_caret_in_value_is_escaped_by_doubling():
    assert _match("name=a^^b", {"name": "a^b"})


def test_date_generate_is_resolved_to_a_datetime_literal():
    condition = Condition.parse("sys_updated_on>=javascript:gs.dateGenerate('2026-01-05','08:00:00')")
    assert condition.value == "2026-01-05 08:00:00"
    assert _match(
        "sys_created_onBETWEENjavascript:gs.dateGenerate('2026-01-01','start')@2026-01-31 23:59:59",
        {"sys_created_on": "2026-01-15 10:00:00"},
    )


def test_numbers_compare_numerically_and_empty_values_never_compare():
    assert _match("qty>9", {"qty": "10"})
    assert not _match("qty>9", {"qty": ""})


def test_unparseable_parts_and_unknown_javascript_are_ignored():
    query = EncodedQuery.parse("garbage^sys_updated_on>javascript:gs.daysAgoStart(1)^a=1")
    assert [[c.field for c in term] for term in query.groups[0]] == [["a"]]


def test_order_by_parts_are_collected_in_order():
    query = EncodedQuery.parse("active=true^ORDERBYnumber^ORDERBYDESCcategory")
    assert query.order_by == [("number", False), ("category", True)]


def test_prune_drops_conditions_on_unknown_fields():
    query = EncodedQuery.parse("u_missing=1^a=1^ORDERBYu_missing").prune(lambda f: f == "a")
    assert query.matches({"a": "1", "u_missing": "2"}.get)
    assert query.order_by == []
