"""Orders: takes orders from the web forms and the JSON API and publishes OrderPlaced."""
