"""A tiny WSGI application."""


def greet(name):
    return f"Hello, {name or 'world'}!"


def application(environ, start_response):
    name = environ.get("QUERY_STRING", "").partition("name=")[2]
    body = (greet(name) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
