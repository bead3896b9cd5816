from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .events import Workflow
from .models import CatalogItem
from .schemas import (
    CARD_NUMBER_MESSAGE,
    CARD_NUMBER_PATTERN,
    COUNTRY_MESSAGE,
    MAX_QUANTITY,
    control_character_problem,
)


def printable(value: str) -> None:
    """No control characters (a NUL, a tab, a line break) in a name or an address."""
    problem = control_character_problem(value)
    if problem:
        raise ValidationError(problem, code="control_character")


class OrderForm(forms.Form):
    """The storefront's order form: a quantity per product, where it goes, how to pay."""

    # The lengths are the order's columns: longer input is refused here, not by the database.
    email = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=200, validators=[printable])
    line1 = forms.CharField(label="Address", max_length=200, validators=[printable])
    city = forms.CharField(max_length=100, validators=[printable])
    postal_code = forms.CharField(max_length=20, validators=[printable])
    country = forms.RegexField(
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        help_text="Two-letter code, e.g. FR",
        error_messages={"invalid": COUNTRY_MESSAGE},
    )
    card_number = forms.RegexField(
        regex=CARD_NUMBER_PATTERN,
        max_length=23,
        help_text="Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined",
        error_messages={"invalid": CARD_NUMBER_MESSAGE},
    )

    workflow = forms.ChoiceField(
        label="Workflow (advanced)",
        choices=Workflow.choices(),
        required=False,
        help_text=(
            "Choreography: each app reacts to events. Orchestration: an order saga sends commands."
        ),
    )

    def __init__(self, *args, products: list[CatalogItem], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].initial = settings.ORDERS_DEFAULT_WORKFLOW
        self.products = products
        for product in products:
            self.fields[self.quantity_field(product.sku)] = forms.IntegerField(
                label=product.name,
                min_value=0,
                max_value=MAX_QUANTITY,
                required=False,
                initial=0,
            )

    @staticmethod
    def quantity_field(sku: str) -> str:
        return f"qty_{sku}"

    def product_rows(self):
        return [(product, self[self.quantity_field(product.sku)]) for product in self.products]

    def chosen_items(self) -> list[tuple[str, int]]:
        return [
            (product.sku, self.cleaned_data.get(self.quantity_field(product.sku)) or 0)
            for product in self.products
            if self.cleaned_data.get(self.quantity_field(product.sku))
        ]

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not self.chosen_items():
            raise forms.ValidationError("Choose a quantity for at least one product.")
        return cleaned
