"""mock_gigachat.py: placeholder plugin for t/mock-upstream.py."""


def route(handler, method, path, raw):
    return False
