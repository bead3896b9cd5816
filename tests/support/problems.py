"""What every error under /api/ answers: RFC 9457 problem details, read as a client reads them."""

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def problem_of(response, *, status: int, path: str) -> dict:
    """The problem details in an error response, checked for the shape and the media type
    every API error shares; returns the body, to assert on its detail and errors."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= PROBLEM_MEMBERS, body
    assert set(body) <= PROBLEM_MEMBERS | {"errors"}, body
    assert (body["status"], body["instance"]) == (status, path), body
    assert body["type"] == "about:blank" or body["type"].startswith("/api/problems/"), body
    assert isinstance(body["title"], str) and body["title"], body
    return body
