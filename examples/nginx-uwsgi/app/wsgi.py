"""The application uWSGI runs; nginx serves /static and proxies the rest."""

import json
import os
import subprocess


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/info":
        body = json.dumps(
            {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "pid": os.getpid()}
        )
    elif path == "/orphans":
        # Leave orphans behind: each `sh` exits at once, its background
        # `sleep` is re-parented to PID 1, which must reap it when it ends.
        for _ in range(5):
            subprocess.run(["sh", "-c", "sleep 0.2 &"], check=True)
        body = "left 5 orphans\n"
    elif path == "/write":
        # A file the server writes at run time, in a group-0 writable dir.
        with open("/var/lib/app/visits", "a") as f:
            f.write("visit\n")
        with open("/var/lib/app/visits") as f:
            body = f"visits: {len(f.readlines())}\n"
    else:
        body = "Hello from uWSGI behind nginx!\n"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
