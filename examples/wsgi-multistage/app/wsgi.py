"""A small WSGI application: the service the examples package."""

import json
import os
import platform
import socket

from markupsafe import escape


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = b"ok\n"
        ctype = "text/plain"
    elif path == "/info":
        body = json.dumps(
            {
                "python": platform.python_version(),
                "host": socket.gethostname(),
                "uid": os.getuid(),
                "gid": os.getgid(),
            }
        ).encode() + b"\n"
        ctype = "application/json"
    else:
        name = environ.get("QUERY_STRING", "").partition("name=")[2] or "world"
        body = f"Hello, {escape(name)}! (served by kiln's wsgi example)\n".encode()
        ctype = "text/plain; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
