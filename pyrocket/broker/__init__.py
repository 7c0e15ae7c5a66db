"""The broker: configuration, topic configs, registration, message store,
request handlers and the app that runs them."""
