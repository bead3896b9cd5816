"""Every error under /api/ is RFC 9457 problem details, whoever answered it."""

import pytest
from django.test import Client

from tests.support.problems import problem_of

pytestmark = pytest.mark.django_db(databases="__all__")


def test_an_unknown_url_under_the_api_is_a_problem_that_points_to_the_docs(client):
    response = client.get("/api/nothing-here/")

    problem = problem_of(response, status=404, path="/api/nothing-here/")
    assert (problem["type"], problem["title"]) == ("about:blank", "Not Found")
    assert "/api/docs" in problem["detail"]


def test_a_method_a_url_does_not_take_is_a_problem_that_names_those_it_does(client):
    response = client.delete("/api/products/")

    problem = problem_of(response, status=405, path="/api/products/")
    assert response["Allow"] == "GET"
    assert problem["detail"] == "This URL does not take DELETE; it takes GET."


def test_a_server_error_is_a_problem_and_says_no_more_than_that(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the database said something private")

    monkeypatch.setattr("orders.selectors.catalog_for_sale", broken)
    monkeypatch.setattr("orders.selectors.catalog_is_loading", lambda: False)

    response = Client(raise_request_exception=False).get("/api/products/")

    problem = problem_of(response, status=500, path="/api/products/")
    assert "private" not in response.content.decode()
    assert problem["detail"].startswith("The server failed to answer")


def test_errors_outside_the_api_keep_their_pages(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_document_declares_every_error_as_problem_details(client):
    document = client.get("/api/openapi.json").json()

    errors = {
        (path, method, status): answer
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if int(status) >= 400
    }
    assert ("/api/orders/", "post", "422") in errors
    for where, answer in errors.items():
        assert list(answer["content"]) == ["application/problem+json"], where
        schema = answer["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ProblemOut"}, where
    problem = document["components"]["schemas"]["ProblemOut"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])


def test_a_host_the_server_does_not_serve_is_a_problem_under_the_api(client):
    for method in (client.get, client.post):
        response = method("/api/orders/", HTTP_HOST="elsewhere.example")

        problem = problem_of(response, status=400, path="/api/orders/")
        assert "Host header" in problem["detail"]


def test_a_host_the_server_does_not_serve_is_the_site_s_page_elsewhere(client):
    response = client.get("/", HTTP_HOST="elsewhere.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"The request was malformed" in response.content
