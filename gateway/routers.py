GATEWAY_DB = "gateway"


class GatewayRouter:
    """Send the gateway's records through their own connection (see settings)."""

    def db_for_read(self, model, **hints):
        return GATEWAY_DB if model._meta.app_label == "gateway" else None

    def db_for_write(self, model, **hints):
        return GATEWAY_DB if model._meta.app_label == "gateway" else None

    def allow_migrate(self, db, app_label, **hints):
        if db == GATEWAY_DB:
            return app_label == "gateway"
        return None
