"""Route templates as the Functions host (ASP.NET Core routing) matches them; pure, no I/O."""

from __future__ import annotations

import pytest

from devhost.routes import MethodNotAllowed, RouteMatch, RouteTable, RouteTemplate, RouteTemplateError


def resolve(table: RouteTable[str], path: str, method: str = "GET") -> RouteMatch[str]:
    result = table.resolve(path, method)
    assert isinstance(result, RouteMatch), f"{method} {path} resolved to {result!r}"
    return result


def test_literal_route_wins_over_parameter_route_whatever_the_registration_order():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("failures/{failure_id}", ["GET"], "detail")
    table.add("failures/groups", ["GET"], "groups")

    # When
    literal = resolve(table, "/api/failures/groups")
    parameter = resolve(table, "/api/failures/f-17")

    # Then
    assert (literal.route.target, literal.values) == ("groups", {})
    assert (parameter.route.target, parameter.values) == ("detail", {"failure_id": "f-17"})


def test_constrained_parameter_wins_over_plain_parameter():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("jobs/{name}", None, "by-name")
    table.add("jobs/{job_id:int}", None, "by-id")

    # When / Then
    assert resolve(table, "/api/jobs/42").route.target == "by-id"
    assert resolve(table, "/api/jobs/latest").route.target == "by-name"


def test_a_literal_route_that_refuses_the_method_falls_through_to_a_parameter_route():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("failures/groups", ["GET"], "groups")
    table.add("failures/{failure_id}", ["GET", "DELETE"], "detail")

    # When
    match = resolve(table, "/api/failures/groups", "DELETE")

    # Then
    assert (match.route.target, match.values) == ("detail", {"failure_id": "groups"})


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("a/{id:int}", "a/12", {"id": "12"}),
        ("a/{id:int}", "a/-3", {"id": "-3"}),
        ("a/{id:int}", "a/12x", None),
        ("a/{id:int}", "a/99999999999", None),
        ("a/{id:long}", "a/99999999999", {"id": "99999999999"}),
        ("a/{name:alpha}", "a/Books", {"name": "Books"}),
        ("a/{name:alpha}", "a/books2", None),
        ("a/{flag:bool}", "a/TRUE", {"flag": "TRUE"}),
        ("a/{flag:bool}", "a/yes", None),
        ("a/{g:guid}", "a/3f2504e0-4f89-11d3-9a0c-0305e82c3301", {"g": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}),
        ("a/{g:guid}", "a/3f2504e04f8911d39a0c0305e82c3301", {"g": "3f2504e04f8911d39a0c0305e82c3301"}),
        ("a/{g:guid}", "a/not-a-guid", None),
        ("a/{n:int:range(1,5)}", "a/5", {"n": "5"}),
        ("a/{n:int:range(1,5)}", "a/6", None),
        ("a/{s:minlength(3)}", "a/ab", None),
        ("a/{s:length(2)}", "a/ab", {"s": "ab"}),
        ("a/{s:regex(^x-\\d{{2}}$)}", "a/X-12", {"s": "X-12"}),
        ("a/{s:regex(^x-\\d{{2}}$)}", "a/x-123", None),
    ],
)
def test_constraints_decide_whether_a_segment_matches(template, path, expected):
    # Given
    parsed = RouteTemplate.parse(template)

    # When
    values = parsed.match(path.split("/"))

    # Then
    assert values == expected


def test_an_unknown_constraint_is_rejected_when_the_route_is_registered():
    # When / Then
    with pytest.raises(RouteTemplateError, match="unknown route constraint 'integer'"):
        RouteTemplate.parse("a/{id:integer}")


@pytest.mark.parametrize(
    "template",
    ["a/{*rest}/b", "a/{x?}/b", "a/{x}/{x}", "a//b", "a/{x}.{y}", "a/x{y}", "a/{x", "a/{1x}", "a/{x:range(1)}"],
)
def test_malformed_templates_are_rejected(template):
    # When / Then
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse(template)


def test_optional_parameter_may_be_left_out():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("integrations/{integration}/jobs/{job_id?}", ["GET"], "jobs")

    # When / Then
    assert resolve(table, "/api/integrations/crm/jobs").values == {"integration": "crm"}
    assert resolve(table, "/api/integrations/crm/jobs/7").values == {"integration": "crm", "job_id": "7"}


def test_parameter_default_fills_a_missing_segment():
    # Given
    table: RouteTable[str] = RouteTable("")
    table.add("page/{number:int=1}", None, "page")

    # When / Then
    assert resolve(table, "/page").values == {"number": "1"}
    assert resolve(table, "/page/3").values == {"number": "3"}


def test_catch_all_takes_the_rest_of_the_path_decoded():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("portal/{*path}", ["GET"], "portal")

    # When / Then
    assert resolve(table, "/api/portal/css/site%20main.css").values == {"path": "css/site main.css"}
    assert resolve(table, "/api/portal").values == {}


def test_literals_and_prefix_match_case_insensitively_and_ignore_a_trailing_slash():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("Health", ["GET"], "health")

    # When / Then
    assert resolve(table, "/API/health/").route.target == "health"


def test_path_outside_the_prefix_or_unknown_is_not_found():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("health", ["GET"], "health")

    # When / Then
    assert table.resolve("/health", "GET") is None
    assert table.resolve("/api/nothing", "GET") is None


def test_known_path_with_another_method_is_method_not_allowed_listing_the_allowed_ones():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("integrations/{integration}", ["GET", "PUT"], "config")

    # When
    result = table.resolve("/api/integrations/crm", "POST")

    # Then
    assert result == MethodNotAllowed(frozenset({"GET", "PUT"}))


def test_two_routes_for_the_same_paths_and_methods_conflict():
    # Given
    table: RouteTable[str] = RouteTable("api")
    table.add("integrations/{integration}", ["GET"], "one")

    # When / Then
    with pytest.raises(RouteTemplateError, match="conflicts"):
        table.add("integrations/{name}", ["GET", "POST"], "two")
    table.add("integrations/{name}", ["DELETE"], "three")
