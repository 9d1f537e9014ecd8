from greeter import application, greet


def test_greet():
    assert greet("kiln") == "Hello, kiln!"
    assert greet("") == "Hello, world!"


def test_application():
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    body = b"".join(application({"QUERY_STRING": "name=dev"}, start_response))
    assert seen["status"] == "200 OK"
    assert body == b"Hello, dev!\n"
