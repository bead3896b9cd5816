import uuid

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .destinations import country_problem, shippable_countries
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


class CardNumberInput(forms.TextInput):
    """A text input that never sends its value back to the browser (PasswordInput's
    render_value=False, left readable): after an error the card number is typed again."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


class CountryField(forms.ChoiceField):
    """One of the countries the carrier serves, by its ISO code; another is refused saying why."""

    def __init__(self, **kwargs):
        super().__init__(choices=self.served_choices, **kwargs)

    @staticmethod
    def served_choices() -> list[tuple[str, str]]:
        # Called for each form, so the list follows SHIPPING_UNSERVED_COUNTRIES as it is now.
        return [("", "Choose a country"), *shippable_countries()]

    def validate(self, value):
        if value and not self.valid_value(value):
            raise ValidationError(country_problem(value) or COUNTRY_MESSAGE, code="invalid_choice")
        super().validate(value)


class OrderForm(forms.Form):
    """The storefront's order form: a quantity per product, where it goes, how to pay."""

    # The lengths are the order's columns: longer input is refused here, not by the database.
    email = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=200, validators=[printable])
    line1 = forms.CharField(label="Address", max_length=200, validators=[printable])
    city = forms.CharField(max_length=100, validators=[printable])
    postal_code = forms.CharField(max_length=20, validators=[printable])
    country = CountryField(
        help_text="Those our carrier delivers to",
        error_messages={"required": "Choose a country."},
    )
    card_number = forms.RegexField(
        regex=CARD_NUMBER_PATTERN,
        max_length=23,
        help_text="Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined",
        error_messages={"invalid": CARD_NUMBER_MESSAGE},
        widget=CardNumberInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
    )

    workflow = forms.ChoiceField(
        label="Workflow (advanced)",
        choices=Workflow.choices(),
        required=False,
        help_text=(
            "Choreography: each app reacts to events. Orchestration: an order saga sends commands."
        ),
    )

    # A one-time token each form is rendered with: the order it places is kept
    # under it, so a double submit or a resubmit after going back lands on that
    # order instead of placing another.
    placement_token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, products: list[CatalogItem], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["placement_token"].initial = uuid.uuid4
        self.fields["workflow"].initial = settings.ORDERS_DEFAULT_WORKFLOW
        self.products = products
        for product in products:
            self.fields[self.quantity_field(product.sku)] = forms.IntegerField(
                label=product.name,
                min_value=0,
                max_value=MAX_QUANTITY,
                required=False,
                initial=0,
                widget=forms.NumberInput(attrs={"aria-label": f"Quantity of {product.name}"}),
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
        """Every error at once: a quantity over what the catalog has beside the other fields',
        and nothing chosen only when no quantity was refused (one was chosen, then)."""
        super().clean()
        cleaned = self.cleaned_data  # what Form.clean() returns
        for product in self.products:
            field = self.quantity_field(product.sku)
            quantity = cleaned.get(field) or 0
            if quantity > max(product.available, 0):
                self.add_error(field, _too_many(product))
        if not cleaned.get("placement_token"):
            # Sent by hand or cut short: say so, and give the form shown again a token of its own.
            self.data = {**self.data, "placement_token": str(uuid.uuid4())}
            self.add_error(
                None,
                "This form was not sent whole (its one-time token is missing): check the order "
                "and place it again.",
            )
        quantity_refused = any(self.has_error(self.quantity_field(p.sku)) for p in self.products)
        if not quantity_refused and not self.chosen_items():
            self.add_error(None, "Choose a quantity for at least one product.")
        return cleaned


def _too_many(product: CatalogItem) -> ValidationError:
    if product.available <= 0:
        return ValidationError("Out of stock.", code="out_of_stock")
    return ValidationError(
        "Only %(available)s available.",
        code="over_available",
        params={"available": product.available},
    )
