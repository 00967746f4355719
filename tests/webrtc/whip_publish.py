#!/usr/bin/env python3
"""WHIP publisher on aiortc: H.264 video (a moving test pattern aiortc encodes itself) and
silent Opus audio, for --seconds, then optionally DELETE on the Location.

    whip_publish.py --url 'http://127.0.0.1:PORT/rtc/v1/whip/?app=live&stream=s' --seconds 10 [--delete]
    whip_publish.py --json-api --url http://127.0.0.1:PORT/rtc/v1/publish/ --app live --stream s

Prints one JSON line: status, location, candidates (the answer's a=candidate lines), connected,
frames (video frames handed to the encoder), session (JSON API), delete_status, error.
Exits 1 when the offer is refused or the connection does not come up.
"""

import argparse
import asyncio
import sys
import time

import rtc_common as common  # before aiortc: patches aioice to offer 127.0.0.1

import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack


class PatternTrack(VideoStreamTrack):
    """Vertical luma bars that move 4 pixels a frame, with a colour tint that changes every
    second: cheap to draw without numpy, and never two identical frames in a row."""

    def __init__(self, width, height):
        super().__init__()
        self.width, self.height = width, height
        period = 64
        bars = bytes((16 + (x % period) * 219 // (period - 1)) for x in range(period))
        self.row_source = bars * (width // period + 3)
        self.period = period
        self.frames = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        n = self.frames
        self.frames += 1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y, u, v = frame.planes
        offset = (n * 4) % self.period
        row = self.row_source[offset : offset + self.width].ljust(y.line_size, b"\x10")
        y.update(row * self.height)
        tint = (n // 30) % 4
        chroma_rows = (self.height + 1) // 2
        u.update(bytes([96 + 32 * tint]) * (u.line_size * chroma_rows))
        v.update(bytes([160 - 32 * tint]) * (v.line_size * chroma_rows))
        frame.pts = pts
        frame.time_base = time_base
        return frame


def force_h264(transceiver):
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
    transceiver.setCodecPreferences(h264)


async def wait_connected(pc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pc.connectionState == "connected":
            return True
        if pc.connectionState in ("failed", "closed"):
            return False
        await asyncio.sleep(0.05)
    return False


async def publish(args):
    result = {
        "status": 0,
        "location": None,
        "candidates": [],
        "connected": False,
        "frames": 0,
        "session": None,
        "delete_status": None,
        "error": None,
    }
    pc = RTCPeerConnection()
    video = PatternTrack(args.width, args.height)
    try:
        transceiver = pc.addTransceiver(video, direction="sendonly")
        if args.codec == "h264":
            force_h264(transceiver)
        if not args.no_audio:
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        answer = await common.offer_and_exchange(pc, args, result)
        if answer is None:
            return result
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if not await wait_connected(pc, args.connect_timeout):
            result["error"] = f"not connected after {args.connect_timeout}s ({pc.connectionState})"
            return result
        result["connected"] = True
        common.log(f"whip_publish: connected, publishing {args.seconds}s")
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            if pc.connectionState != "connected":
                result["error"] = f"connection went {pc.connectionState}"
                break
            await asyncio.sleep(0.1)
        if args.delete:
            if result["location"]:
                result["delete_status"] = await asyncio.get_running_loop().run_in_executor(
                    None, common.delete, args.url, result["location"]
                )
            else:
                result["error"] = result["error"] or "--delete: the answer had no Location"
        return result
    finally:
        result["frames"] = video.frames
        await pc.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="WHIP endpoint (or the JSON API one with --json-api)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to publish once connected")
    p.add_argument("--delete", action="store_true", help="DELETE the Location at the end")
    p.add_argument("--json-api", action="store_true", help="SRS's legacy JSON body (/rtc/v1/publish/)")
    p.add_argument("--app", help="app for --json-api (default: ?app= of --url)")
    p.add_argument("--stream", help="stream for --json-api (default: ?stream= of --url)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--codec", choices=["h264", "any"], default="h264", help="h264: force H.264 (default)")
    p.add_argument("--no-audio", action="store_true", help="video only")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    args = p.parse_args()
    try:
        result = asyncio.run(publish(args))
    except Exception as e:  # report, never a bare traceback instead of the JSON line
        result = {"status": 0, "error": f"{type(e).__name__}: {e}", "connected": False}
    common.emit(result)
    ok = result.get("connected") and not result.get("error")
    if args.delete and result.get("delete_status") != 200:
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
