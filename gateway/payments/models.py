"""Payment tables of their own (webhook events...)."""
