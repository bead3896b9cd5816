"""setup_demo: the demo account and catalog, with no password anyone knows outside DEBUG."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from inventory.models import Product

pytestmark = pytest.mark.django_db


def test_in_debug_it_creates_admin_admin_and_the_catalog(settings, monkeypatch, capsys):
    settings.DEBUG = True
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)

    call_command("setup_demo")

    assert get_user_model().objects.get(username="admin").check_password("admin")
    assert Product.objects.filter(sku="MUG-001").exists()
    assert "Login:  admin / admin" in capsys.readouterr().out


def test_outside_debug_it_refuses_without_a_password_and_creates_nothing(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)

    with pytest.raises(CommandError, match="set DEMO_ADMIN_PASSWORD"):
        call_command("setup_demo")

    assert not get_user_model().objects.exists()
    assert not Product.objects.exists()


@pytest.mark.parametrize("weak", ["admin", "password", "12345678"])
def test_outside_debug_a_weak_password_is_refused(settings, monkeypatch, weak):
    settings.DEBUG = False
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", weak)

    with pytest.raises(CommandError, match="DEMO_ADMIN_PASSWORD is refused"):
        call_command("setup_demo")

    assert not get_user_model().objects.exists()


def test_outside_debug_a_strong_password_is_taken(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "correct horse battery staple 93")

    call_command("setup_demo")

    assert (
        get_user_model()
        .objects.get(username="admin")
        .check_password("correct horse battery staple 93")
    )
