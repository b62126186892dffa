"""http: real curl 7.88 and wget 1.21 runs against a throwaway nginx on 127.0.0.1:18080
(an SPA: unknown paths serve index.html, /assets/ does not), and the real command in dash."""

from __future__ import annotations

import pytest

from opsfix.checks.http import Http

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import free_port, run_local


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_200_with_the_text_passes(client):
    verdict = judge(Http, f"{client}_200")
    assert verdict.status == "passed"
    assert verdict.evidence == {"url": "http://127.0.0.1:18080/", "status": 200}


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_404_fails_with_status_and_body(client):
    verdict = judge(Http, f"{client}_404")
    assert verdict.status == "failed"
    assert verdict.evidence["status"] == 404 and verdict.evidence["expected"] == 200
    assert "404 Not Found" in verdict.evidence["body"]
    assert judge(Http, f"{client}_404", status=404).status == "passed"


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_connection_refused_fails_with_the_clients_error(client):
    verdict = judge(Http, f"{client}_refused")
    assert verdict.status == "failed"
    assert "refused" in verdict.evidence["error"] or "Couldn't connect" in verdict.evidence["error"]


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_spa_deep_link_and_regex(client):
    verdict = judge(Http, f"{client}_deep_link")
    assert verdict.status == "passed"
    assert verdict.evidence["url"] == "http://127.0.0.1:18080/shop/cart"


def test_missing_text_fails_with_an_excerpt():
    verdict = judge(Http, "curl_200", contains="Checkout")
    assert verdict.status == "failed"
    assert verdict.summary == "body lacks 'Checkout'"
    assert verdict.evidence["body"].startswith("<!doctype html>")


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_regex_mismatch_fails(client):
    assert judge(Http, f"{client}_deep_link", regex=r"<title>Admin").status == "failed"


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_big_binary_body_is_bounded_and_readable(client):
    verdict = judge(Http, f"{client}_big_binary", contains="never there")
    assert verdict.status == "failed" and verdict.summary == "body lacks 'never there'"
    # the client stopped once `head` had the 64 bytes kept: a cut body is no error
    assert verdict.evidence["truncated"] is True
    assert len(verdict.evidence["body"]) == 64
    assert verdict.evidence["body"].startswith(".........\t\n")
    if client == "wget":
        assert verdict.evidence["size"] == 102400  # Content-Length: what nginx sent


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_unresolvable_host_is_could_not_tell(client):
    verdict = judge(Http, f"{client}_unresolvable")
    assert verdict.status == "error"
    assert "resolve host" in verdict.evidence["error"]


def test_no_client_is_could_not_tell():
    verdict = judge(Http, "no_client")
    assert verdict.status == "error"
    assert verdict.summary == "no HTTP client on the host (curl or wget)"


def test_url_path_join_and_validation():
    assert make(Http, url="http://127.0.0.1:8080", path="app/").url == "http://127.0.0.1:8080/app/"
    assert make(Http, url="http://h/base/", path="/x?y=1").url == "http://h/base/x?y=1"
    with pytest.raises(ValueError, match="https"):
        make(Http, url="ftp://h/")
    with pytest.raises(ValueError, match="regular expression"):
        make(Http, regex="(unclosed")


def test_hostile_values_stay_quoted(tmp_path):
    marker, values = hostile(tmp_path)
    port = free_port()  # nothing listens: the request is refused at once
    check = make(Http, url=f"http://127.0.0.1:{port}/{values[1]}", host_header=values[0])
    assert_harmless(check, marker, f"http://127.0.0.1:{port}/{values[1]}", f"Host: {values[0]}")
    check = make(Http, url=f"http://127.0.0.1:{port}", path=values[2])
    assert_harmless(check, marker, values[2])


def test_real_commands_in_dash(live_nginx):
    check = make(Http, url=live_nginx.url, path="/shop/cart", contains="Welcome to the shop")
    assert check.evaluate(run_local(check.commands())).status == "passed"
    check = make(Http, url=live_nginx.url, path="/assets/nope.js", host_header="shop.example")
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status == "failed" and verdict.evidence["status"] == 404
    check = make(Http, url=f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert check.evaluate(run_local(check.commands())).status == "failed"
