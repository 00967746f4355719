"""Shared bits of the aiortc test clients (whip_publish.py, whep_play.py).

Import this module before aiortc: it patches aioice so that ICE offers 127.0.0.1, which aioice
never does on its own (shared/design/test-peers.md), and every test here is loopback-only.
"""

import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

HTTP_TIMEOUT = 10.0

CANDIDATE_RE = re.compile(
    r"^(a=candidate:\S+ \d+ udp \d+ )(\S+) (\d+)( typ host.*)$", re.IGNORECASE | re.MULTILINE
)


def candidates(sdp):
    """The `a=candidate:` lines of an SDP, as written."""
    return [line.strip() for line in sdp.splitlines() if line.startswith("a=candidate:")]


def host_candidate(sdp):
    """(ip, port) of the first UDP host candidate, or None."""
    m = CANDIDATE_RE.search(sdp)
    return (m.group(2), int(m.group(3))) if m else None


def rewrite_host_candidates(sdp, ip, port):
    """Points every UDP host candidate at ip:port (the relay of whep_play.py --rebind-after)."""
    return CANDIDATE_RE.sub(lambda m: f"{m.group(1)}{ip} {port}{m.group(4)}", sdp)


def _request(method, url, body=None, content_type=None):
    """One HTTP request with urllib: (status, headers dict, body text). Never raises on HTTP
    errors; a transport error is status 0 with the error as the body."""
    headers = {"Connection": "close"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, dict(resp.headers.items()), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, {}, f"{type(e).__name__}: {e}"


def stream_of(url, app=None, stream=None):
    """(app, stream): the flags if given, else ?app=&stream= of the URL."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    app = app or (query.get("app") or [None])[0]
    stream = stream or (query.get("stream") or [None])[0]
    return app, stream


def exchange(url, offer_sdp, json_api=False, app=None, stream=None):
    """POSTs the offer. WHIP/WHEP: the SDP as the body. JSON API (SRS's /rtc/v1/publish/ and
    /rtc/v1/play/): {"api","tid","streamurl","clientip","sdp"}, answer in the "sdp" field.

    Returns a dict: status, location, answer (SDP or None), session (JSON API sessionid),
    error (text, when there is no answer)."""
    result = {"status": 0, "location": None, "answer": None, "session": None, "error": None}
    if json_api:
        app, stream = stream_of(url, app, stream)
        if not app or not stream:
            result["error"] = "--json-api needs --app/--stream or ?app=&stream= in --url"
            return result
        netloc = urllib.parse.urlsplit(url).netloc
        body = json.dumps(
            {
                "api": url,
                "tid": f"{int(time.time() * 1000) % 10000000:07d}",
                "streamurl": f"webrtc://{netloc}/{app}/{stream}",
                "clientip": None,
                "sdp": offer_sdp,
            }
        ).encode()
        status, headers, text = _request("POST", url, body, "application/json")
        result["status"] = status
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        if isinstance(reply, dict) and reply.get("code") == 0 and isinstance(reply.get("sdp"), str):
            result["answer"] = reply["sdp"]
            result["session"] = reply.get("sessionid")
        else:
            result["error"] = text[:500]
        return result
    status, headers, text = _request("POST", url, offer_sdp.encode(), "application/sdp")
    result["status"] = status
    result["location"] = next((v for k, v in headers.items() if k.lower() == "location"), None)
    if status in (200, 201) and "v=0" in text:
        result["answer"] = text
    else:
        result["error"] = text[:500]
    return result


async def offer_and_exchange(pc, args, result):
    """Creates the local offer, sends it (`exchange`, off the event loop) and records status,
    Location, session and candidates in `result`. Returns the answer SDP, or None with
    `result["error"]` set."""
    import asyncio

    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()
    reply = await loop.run_in_executor(
        None,
        exchange,
        args.url,
        pc.localDescription.sdp,
        args.json_api,
        args.app,
        args.stream,
    )
    result.update(status=reply["status"], location=reply["location"], session=reply["session"])
    if reply["answer"] is None:
        result["error"] = f"no answer: {reply['error']}"
        return None
    result["candidates"] = candidates(reply["answer"])
    return reply["answer"]


def delete(url, location):
    """DELETE on the Location (resolved against the URL); the status (0: transport error)."""
    status, _, _ = _request("DELETE", urllib.parse.urljoin(url, location))
    return status


def emit(result):
    """Prints the one JSON result line (and flushes)."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def log(*args):
    print(*args, file=sys.stderr, flush=True)
