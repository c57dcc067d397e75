"""clienttrack gateway: email-native secure payment requests."""
