"""A small WSGI application, served by Apache through mod_wsgi."""

import json
import os


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/info":
        body = json.dumps(
            {
                "server": environ.get("SERVER_SOFTWARE", ""),
                "mod_wsgi": ".".join(map(str, environ.get("mod_wsgi.version", ()))),
                "uid": os.getuid(),
                "cwd": os.getcwd(),
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    name = environ.get("QUERY_STRING", "").partition("name=")[2] or "world"
    body = f"Hello, {name}! (Apache + mod_wsgi)\n".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
