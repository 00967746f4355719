#!/usr/bin/env python3
"""WHEP player on aiortc: recvonly video (+ audio) transceivers, decodes video for --seconds.

    whep_play.py --url 'http://127.0.0.1:PORT/rtc/v1/whep/?app=live&stream=s' --seconds 8
    whep_play.py --json-api --url http://127.0.0.1:PORT/rtc/v1/play/ --app live --stream s
    whep_play.py --url … --seconds 16 --rebind-after 4

Prints one JSON line: status, location, candidates (the answer's a=candidate lines), connected,
frames, width, height (of the last decoded frame), frames_after_rebind, rebind (relay counters),
session (JSON API), delete_status, error. Exits 1 on a refused offer, no connection, or fewer
than --min-frames decoded frames (and, with --rebind-after, fewer than --min-frames-after-rebind
after the switch).

--rebind-after SECS moves the client's UDP source mid-session. The answer's host candidate is
rewritten to a relay in this process before setRemoteDescription, so aiortc's ICE talks to the
relay; the relay forwards to the real candidate from upstream socket #1, and SECS after the
connection comes up it switches to a NEW upstream socket #2 (a new source port) and closes #1.
The server only learns the new address from a STUN binding request (aiortc's consent checks,
every 4-6 s), as with a NAT rebinding. frames_after_rebind counts frames decoded after the
first media datagram came back through socket #2.
"""

import argparse
import asyncio
import sys
import time

import rtc_common as common  # before aiortc: patches aioice to offer 127.0.0.1

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram):
        self.on_datagram = on_datagram
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.on_datagram(data, addr)

    def error_received(self, exc):
        pass


class RebindRelay:
    """client ICE <-> front socket <-> upstream socket #1, later #2 <-> the real candidate."""

    def __init__(self, target):
        self.target = target
        self.client = None
        self.front = None
        self.upstreams = []
        self.current = 0
        self.switched_at = None
        self.first_media_after_switch = None
        self.counts = {"to_server": 0, "to_client": 0, "to_client_after_rebind": 0,
                       "dropped_on_old_socket": 0}

    async def start(self):
        loop = asyncio.get_running_loop()
        self.front, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self._from_client), local_addr=("127.0.0.1", 0)
        )
        for i in range(2):
            transport, _ = await loop.create_datagram_endpoint(
                lambda i=i: _Endpoint(lambda d, a, i=i: self._from_server(i, d, a)),
                local_addr=("127.0.0.1", 0),
            )
            self.upstreams.append(transport)

    @property
    def front_port(self):
        return self.front.get_extra_info("sockname")[1]

    def source_port(self, i):
        return self.upstreams[i].get_extra_info("sockname")[1]

    def _from_client(self, data, addr):
        self.client = addr
        self.counts["to_server"] += 1
        self.upstreams[self.current].sendto(data, self.target)

    def _from_server(self, i, data, addr):
        if i != self.current or self.client is None:
            self.counts["dropped_on_old_socket"] += 1
            return
        self.counts["to_client"] += 1
        if self.switched_at is not None:
            self.counts["to_client_after_rebind"] += 1
            if self.first_media_after_switch is None and data and 128 <= data[0] <= 191:
                self.first_media_after_switch = time.monotonic()
        self.front.sendto(data, self.client)

    def switch(self):
        """From now on: upstream socket #2; #1 is closed (its late datagrams are lost)."""
        self.current = 1
        self.switched_at = time.monotonic()
        self.upstreams[0].close()

    def report(self):
        out = dict(self.counts)
        out["old_source_port"] = self.source_port(0) if self.upstreams else None
        out["new_source_port"] = self.source_port(1) if len(self.upstreams) > 1 else None
        out["switched"] = self.switched_at is not None
        out["media_resumed_after_s"] = (
            round(self.first_media_after_switch - self.switched_at, 3)
            if self.first_media_after_switch is not None
            else None
        )
        return out

    def close(self):
        for t in [self.front] + self.upstreams:
            if t is not None:
                t.close()


async def play(args):
    result = {
        "status": 0,
        "location": None,
        "candidates": [],
        "connected": False,
        "frames": 0,
        "width": None,
        "height": None,
        "frames_after_rebind": 0,
        "rebind": None,
        "session": None,
        "delete_status": None,
        "error": None,
    }
    pc = RTCPeerConnection()
    relay = None
    consumers = []

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            result["frames"] += 1
            result["width"], result["height"] = frame.width, frame.height
            if relay is not None and relay.first_media_after_switch is not None:
                result["frames_after_rebind"] += 1

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            consumers.append(asyncio.ensure_future(consume(track)))

    try:
        pc.addTransceiver("video", direction="recvonly")
        if not args.no_audio:
            pc.addTransceiver("audio", direction="recvonly")
        answer = await common.offer_and_exchange(pc, args, result)
        if answer is None:
            return result
        if args.rebind_after is not None:
            target = common.host_candidate(answer)
            if target is None:
                result["error"] = "--rebind-after: the answer has no UDP host candidate"
                return result
            relay = RebindRelay(target)
            await relay.start()
            answer = common.rewrite_host_candidates(answer, "127.0.0.1", relay.front_port)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        deadline = time.monotonic() + args.connect_timeout
        while pc.connectionState != "connected" and time.monotonic() < deadline:
            if pc.connectionState in ("failed", "closed"):
                break
            await asyncio.sleep(0.05)
        if pc.connectionState != "connected":
            result["error"] = f"not connected after {args.connect_timeout}s ({pc.connectionState})"
            return result
        result["connected"] = True
        start = time.monotonic()
        common.log(f"whep_play: connected, playing {args.seconds}s")
        while time.monotonic() - start < args.seconds:
            if relay is not None and relay.switched_at is None and time.monotonic() - start >= args.rebind_after:
                relay.switch()
                common.log(
                    f"whep_play: rebound: upstream source port {relay.source_port(0)} -> {relay.source_port(1)}"
                )
            if pc.connectionState != "connected":
                result["error"] = f"connection went {pc.connectionState}"
                break
            await asyncio.sleep(0.05)
        if args.delete and result["location"]:
            result["delete_status"] = await asyncio.get_running_loop().run_in_executor(
                None, common.delete, args.url, result["location"]
            )
        if not result["error"] and result["frames"] < args.min_frames:
            result["error"] = f"decoded {result['frames']} frames, wanted at least {args.min_frames}"
        if (
            not result["error"]
            and relay is not None
            and result["frames_after_rebind"] < args.min_frames_after_rebind
        ):
            result["error"] = (
                f"decoded {result['frames_after_rebind']} frames after the rebind, "
                f"wanted at least {args.min_frames_after_rebind}"
            )
        return result
    finally:
        if relay is not None:
            result["rebind"] = relay.report()
        for c in consumers:
            c.cancel()
        await pc.close()
        if relay is not None:
            relay.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="WHEP endpoint (or the JSON API one with --json-api)")
    p.add_argument("--seconds", type=float, default=8.0, help="how long to play once connected")
    p.add_argument("--json-api", action="store_true", help="SRS's legacy JSON body (/rtc/v1/play/)")
    p.add_argument("--app", help="app for --json-api (default: ?app= of --url)")
    p.add_argument("--stream", help="stream for --json-api (default: ?stream= of --url)")
    p.add_argument("--no-audio", action="store_true", help="no audio transceiver")
    p.add_argument("--delete", action="store_true", help="DELETE the Location at the end")
    p.add_argument("--rebind-after", type=float, default=None,
                   help="switch the UDP source port SECS after connecting (see above)")
    p.add_argument("--min-frames", type=int, default=1)
    p.add_argument("--min-frames-after-rebind", type=int, default=1)
    p.add_argument("--connect-timeout", type=float, default=10.0)
    args = p.parse_args()
    try:
        result = asyncio.run(play(args))
    except Exception as e:  # report, never a bare traceback instead of the JSON line
        result = {"status": 0, "frames": 0, "error": f"{type(e).__name__}: {e}", "connected": False}
    common.emit(result)
    ok = result.get("connected") and not result.get("error")
    if args.delete and result.get("location") and result.get("delete_status") != 200:
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
