#!/usr/bin/env python3
"""Network checks for the plain-QEMU tap test (tests/harness/src/tap.rs),
run inside its network namespace (so they reach only the guest on the tap
device).

  netcheck.py ping ADDR [--count N] [--deadline S]
      ICMP echo through a raw socket (root; no ping binary needed): waits
      until the address answers, then requires COUNT replies in a row.
  netcheck.py echo ADDR PORT [--bytes N] [--deadline S]
      Connects to a TCP echo service (retrying until the deadline), sends N
      random bytes from one thread while another reads, half-closes after
      the last byte, reads to EOF and compares SHA-256 and length.

Prints one line about what happened; exit status 0 only on success.
"""
import argparse
import hashlib
import os
import socket
import struct
import sys
import threading
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping_once(sock, addr, ident, seq, timeout):
    payload = struct.pack("!d", time.monotonic()) + bytes(range(48))
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload
    sock.sendto(packet, (addr, 0))
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data, (src, _) = sock.recvfrom(2048)
        except socket.timeout:
            return None
        ihl = (data[0] & 0xF) * 4
        icmp = data[ihl:]
        if src != addr or len(icmp) < 8:
            continue
        kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
        if kind == 0 and rid == ident and rseq == seq and icmp[8:] == payload:
            return (time.monotonic() - struct.unpack("!d", payload[:8])[0]) * 1000


def ping(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + args.deadline
    seq, streak, rtts = 0, 0, []
    while time.monotonic() < deadline:
        seq += 1
        rtt = ping_once(sock, args.addr, ident, seq, min(2.0, max(0.1, deadline - time.monotonic())))
        if rtt is None:
            streak, rtts = 0, []
            continue
        streak += 1
        rtts.append(rtt)
        if streak == args.count:
            print("%d replies from %s, rtt min/avg/max %.2f/%.2f/%.2f ms (first after %d requests)"
                  % (args.count, args.addr, min(rtts), sum(rtts) / len(rtts), max(rtts), seq - args.count + 1))
            return 0
        time.sleep(0.2)
    print("no %d replies in a row from %s within %ds (%d requests)" % (args.count, args.addr, args.deadline, seq))
    return 1


def echo(args):
    deadline = time.monotonic() + args.deadline
    sock = None
    attempts = 0
    while sock is None:
        attempts += 1
        try:
            sock = socket.create_connection((args.addr, args.port), timeout=5)
        except OSError as e:
            if time.monotonic() > deadline:
                print("cannot connect to %s:%d after %d attempts: %s" % (args.addr, args.port, attempts, e))
                return 1
            time.sleep(0.5)
    sock.settimeout(max(1.0, deadline - time.monotonic()))
    data = os.urandom(args.bytes)
    sent_hash = hashlib.sha256(data).hexdigest()
    error = []

    def sender():
        try:
            view = memoryview(data)
            for i in range(0, len(view), 65536):
                sock.sendall(view[i:i + 65536])
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            error.append("send: %s" % e)

    start = time.monotonic()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    received = hashlib.sha256()
    count = 0
    try:
        while True:
            if time.monotonic() > deadline:
                error.append("deadline passed")
                break
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received.update(chunk)
            count += len(chunk)
    except OSError as e:
        error.append("recv after %d bytes: %s" % (count, e))
    elapsed = time.monotonic() - start
    thread.join(timeout=5)
    sock.close()
    got_hash = received.hexdigest()
    summary = "%d bytes sent, %d echoed in %.2f s (%.1f Mbit/s); sha256 sent %s.. received %s.." % (
        args.bytes, count, elapsed, count * 8 / elapsed / 1e6 if elapsed else 0, sent_hash[:16], got_hash[:16])
    if error:
        print("%s; %s" % ("; ".join(error), summary))
        return 1
    if count != args.bytes or got_hash != sent_hash:
        print("echo differs: " + summary)
        return 1
    print(summary)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("ping")
    pp.add_argument("addr")
    pp.add_argument("--count", type=int, default=3)
    pp.add_argument("--deadline", type=int, default=60)
    pe = sub.add_parser("echo")
    pe.add_argument("addr")
    pe.add_argument("port", type=int)
    pe.add_argument("--bytes", type=int, default=16 << 20)
    pe.add_argument("--deadline", type=int, default=300)
    args = p.parse_args()
    return ping(args) if args.cmd == "ping" else echo(args)


if __name__ == "__main__":
    sys.exit(main())
