#!/usr/bin/python3
"""Writes N sshd-like journal entries in journal export format to stdout, for
systemd-journal-remote to turn into a real journal file. About 30% are failed logins from about
5,000 addresses (IPv4 and IPv6); the rest are the usual accepted-login and session noise.
Deterministic (seeded), so runs compare.

Usage: gen_sshd_journal.py N | systemd-journal-remote -o DIR/sshd.journal -
"""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = random.Random(42)
boot = "0123456789abcdef0123456789abcdef"
machine = "fedcba9876543210fedcba9876543210"
ips = []
for i in range(5000):
    if i % 5 == 0:
        ips.append("2001:db8:%x::%x" % (rng.randrange(1, 0xFFFF), rng.randrange(1, 0xFFFF)))
    else:
        ips.append("203.%d.%d.%d" % (rng.randrange(0, 256), rng.randrange(0, 256), rng.randrange(1, 255)))
users = ["root", "admin", "test", "ubuntu", "oracle", "git", "postgres", "user"]
noise = [
    "Accepted publickey for deploy from 10.0.0.5 port 51122 ssh2: ED25519 SHA256:abc",
    "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
    "pam_unix(sshd:session): session closed for user deploy",
    "Received disconnect from 10.0.0.5 port 51122:11: disconnected by user",
    "Disconnected from user deploy 10.0.0.5 port 51122",
    "Connection closed by 10.0.0.9 port 40022 [preauth]",
]
t0 = 1_700_000_000_000_000  # µs
out = sys.stdout
for i in range(n):
    if rng.random() < 0.3:
        ip = ips[rng.randrange(len(ips))]
        user = users[rng.randrange(len(users))]
        if rng.random() < 0.3:
            msg = "Failed password for invalid user %s from %s port %d ssh2" % (user, ip, rng.randrange(1024, 65535))
        else:
            msg = "Failed password for %s from %s port %d ssh2" % (user, ip, rng.randrange(1024, 65535))
    else:
        msg = noise[rng.randrange(len(noise))]
    ts = t0 + i * 1000
    out.write(
        "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_MACHINE_ID=%s\n"
        "_HOSTNAME=bench\nPRIORITY=6\nSYSLOG_FACILITY=4\nSYSLOG_IDENTIFIER=sshd\n_PID=%d\n"
        "_COMM=sshd\n_SYSTEMD_UNIT=ssh.service\nMESSAGE=%s\n\n"
        % (ts, ts - t0 + 1, boot, machine, 1000 + i % 50000, msg))
