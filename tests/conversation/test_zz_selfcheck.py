import time
from harness import fixture, time_limit
import server as S

@fixture
def server(scope):
    return scope.server()

@time_limit(2)
def test_hang(server):
    c = server.client()
    c.expect("message", timeout=100)

def test_print_and_fail():
    print("some output")
    assert 1 == 2, "one is not two"

def test_ok(server):
    server.login("ok")

def test_crashing_server(ctx):
    srv = ctx.server()
    srv.proc.kill()

@fixture
def broken(scope):
    raise RuntimeError("fixture broke")

def test_broken_fixture_1(broken):
    pass

def test_broken_fixture_2(broken):
    pass
