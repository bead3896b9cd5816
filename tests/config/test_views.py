"""config.views: what the project answers on its own, for no app."""

import logging

import pytest


@pytest.mark.django_db
def test_a_browser_asking_for_the_icon_gets_none_and_nothing_is_logged(client, caplog):
    # When a browser asks for the icon it was not told of
    with caplog.at_level(logging.INFO):
        response = client.get("/favicon.ico")

    # Then there is none, for a day, and no "Not Found" warning
    assert (response.status_code, response["Cache-Control"]) == (204, "max-age=86400")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
