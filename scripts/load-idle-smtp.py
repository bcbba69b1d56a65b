#!/usr/bin/env python3
"""load-idle-smtp: K IMAP sessions in IDLE while S SMTP sessions deliver M messages to their users.

Against a running Tern (or any IMAP4rev1 + SMTP server with the same users):

1. opens K IMAP connections, each LOGIN + SELECT INBOX + IDLE, users spread round-robin over
   user1..userU (`--user-pattern`), and holds them;
2. runs S concurrent SMTP sessions (MX style: no AUTH, EHLO, MAIL, RCPT, DATA; a new connection
   every `--per-conn` messages) delivering M messages in total, message j to user (j mod U)+1,
   while all K sessions stay in IDLE; meanwhile a fresh client logs in and SELECTs INBOX every
   `--probe-interval` seconds;
3. waits (at most `--exists-timeout` s after the last 250) until every IDLE session has reported
   `* n EXISTS` with n = its SELECT count + the messages acknowledged for its user;
4. ends every IDLE with DONE (tagged OK expected) and LOGOUT.

Fails (exit 1) unless: every SMTP transaction got 250; no IMAP connection was dropped or got
BYE / NO / BAD or anything unexpected; every IDLE session reported its final count; every probe
login + SELECT succeeded within `--probe-max` s; every DONE got its OK.

Records: time to open the K sessions; the server's VmRSS / VmHWM (/proc/<pid>/status), open fds
(/proc/<pid>/fd), threads and CPU seconds before, with K idle, during ingest (peak of samples
every 0.25 s), after ingest and after the K closed; SMTP msgs/s; the latency from a 250 to the
EXISTS at the recipient's IDLE sessions (every session, see `exists_latency`); probe times; the
load average; the largest stall of this script's own event loop (a busy client inflates
latencies; compare with it).

Progress goes to stderr; the last line of stdout is one JSON object with every number.
Self-contained (Python 3 standard library only). The server's pid (`--server-pid` or
`--server-pidfile`) is optional; without it no server figures are recorded.
"""
import argparse
import asyncio
import bisect
import json
import os
import resource
import statistics
import sys
import time

def log(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Server process figures


class Server:
    """Figures of the server process from /proc (nothing when no pid was given)."""

    def __init__(self, pid):
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def status(self):
        if not self.pid:
            return {}
        out = {}
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                        out[key] = int(value.split()[0])
                    elif key == "Threads":
                        out[key] = int(value)
        except OSError as e:
            raise RuntimeError(f"server process {self.pid} is gone: {e}") from e
        return out

    def rss_kib(self):
        """(VmRSS, RssAnon) in KiB."""
        s = self.status()
        return s.get("VmRSS", 0), s.get("RssAnon", 0)

    def fds(self):
        if not self.pid:
            return None
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None  # another user's process

    def cpu_s(self):
        if not self.pid:
            return None
        with open(f"/proc/{self.pid}/stat") as f:
            # Fields after the parenthesised name; utime and stime are fields 14 and 15.
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / self.tick

    def snapshot(self):
        if not self.pid:
            return {}
        s = self.status()
        return {
            "rss_mib": round(s.get("VmRSS", 0) / 1024, 1),
            "hwm_mib": round(s.get("VmHWM", 0) / 1024, 1),
            # VmRSS = anonymous + file-backed (+ shmem); mapped database pages count once per
            # mapping, so RssAnon is the memory the server itself allocated.
            "anon_mib": round(s.get("RssAnon", 0) / 1024, 1),
            "file_mib": round(s.get("RssFile", 0) / 1024, 1),
            "threads": s.get("Threads"),
            "fds": self.fds(),
            "cpu_s": self.cpu_s(),
        }

    def nofile(self):
        if not self.pid:
            return None
        return resource.prlimit(self.pid, resource.RLIMIT_NOFILE)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def summary(values):
    if not values:
        return None
    v = sorted(values)
    return {
        "n": len(v),
        "min": round(v[0], 4),
        "median": round(statistics.median(v), 4),
        "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 4),
        "max": round(v[-1], 4),
    }


# ---------------------------------------------------------------------------------------------
# IMAP


class ImapConn(asyncio.Protocol):
    """One IMAP connection. Before IDLE, lines are queued for `line()`; in IDLE they are parsed
    in `data_received` itself (no task wake-up per line, which matters with 10,000 sessions)."""

    def __init__(self, run, user_index):
        self.run = run
        self.user_index = user_index
        self.buf = bytearray()
        self.lines = []
        self.waiter = None
        self.transport = None
        self.closed = False
        self.idle = False
        self.leaving = False  # we sent DONE/LOGOUT: a close is expected from here on
        self.base = None  # EXISTS at SELECT
        self.exists = None
        self.target = None  # EXISTS every delivery acknowledged for this user adds up to
        self.reached = False
        self.events = []  # (monotonic time, n) of every EXISTS during IDLE
        self.other = 0  # untagged FETCH / RECENT / EXPUNGE lines during IDLE

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            line = bytes(self.buf[: i + 1])
            del self.buf[: i + 1]
            if self.idle:
                self.idle_line(line)
            else:
                self.lines.append(line)
        if self.lines and self.waiter and not self.waiter.done():
            self.waiter.set_result(None)
        if len(self.buf) > 1 << 20:
            self.error(f"line over 1 MiB without LF: {bytes(self.buf[:80])!r}")
            self.transport.close()

    def connection_lost(self, exc):
        self.closed = True
        if not self.leaving:
            self.error(f"connection closed by the server ({exc or 'EOF'})")
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(None)

    # helpers
    def error(self, text):
        self.run.imap_error(self, text)

    def idle_line(self, line):
        if line.startswith(b"* ") and line.endswith(b" EXISTS\r\n"):
            try:
                n = int(line[2:-9])
            except ValueError:
                self.error(f"bad EXISTS: {line!r}")
                return
            self.exists = n
            self.events.append((time.monotonic(), n))
            if self.target is not None and not self.reached and n >= self.target:
                self.reached = True
                self.run.session_reached(self)
            return
        words = line.split(b" ", 3)
        if len(words) >= 3 and words[0] == b"*" and words[1].isdigit() and (
            words[2].rstrip(b"\r\n") in (b"RECENT", b"EXPUNGE") or words[2] == b"FETCH"
        ):
            self.other += 1
            return
        self.error(f"unexpected in IDLE: {line[:200]!r}")

    def enter_idle(self):
        """Switches to IDLE parsing; lines that arrived with the `+` go through it too."""
        self.idle = True
        queued, self.lines = self.lines, []
        for line in queued:
            self.idle_line(line)

    def set_target(self, target):
        self.target = target
        if self.exists is not None and self.exists >= target and not self.reached:
            self.reached = True
            self.run.session_reached(self)

    async def line(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.lines:
            if self.closed:
                raise ConnectionError("connection closed")
            self.waiter = asyncio.get_running_loop().create_future()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply")
            try:
                await asyncio.wait_for(self.waiter, left)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no reply within {timeout} s") from None
            finally:
                self.waiter = None
        return self.lines.pop(0)

    def send(self, text):
        self.transport.write(text.encode())

    async def command(self, tag, text, timeout):
        """Sends `tag text`, returns the untagged lines; raises unless the tagged reply is OK."""
        self.send(f"{tag} {text}\r\n")
        return await self.until_tagged(tag, timeout)

    async def until_tagged(self, tag, timeout):
        untagged = []
        prefix = tag.encode() + b" "
        deadline = time.monotonic() + timeout
        while True:
            line = await self.line(max(0.0, deadline - time.monotonic()))
            if line.startswith(prefix):
                if not line[len(prefix):].startswith(b"OK"):
                    raise RuntimeError(f"{tag}: {line.decode(errors='replace').strip()}")
                return untagged
            untagged.append(line)


def exists_of(untagged):
    for line in untagged:
        if line.startswith(b"* ") and line.rstrip().endswith(b" EXISTS"):
            return int(line[2:].split()[0])
    raise RuntimeError("SELECT without EXISTS")


async def imap_connect(run, user_index, timeout):
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(lambda: ImapConn(run, user_index), run.a.host, run.a.imap_port),
        timeout,
    )
    try:
        greeting = await conn.line(timeout)
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"greeting: {greeting!r}")
        await conn.command("a", f'LOGIN "{run.user(user_index)}" "{run.a.password}"', timeout)
        conn.base = exists_of(await conn.command("b", "SELECT INBOX", timeout))
    except BaseException:
        conn.leaving = True  # the failure is reported by the caller
        conn.transport.close()
        raise
    return conn


async def open_idle(run, n, sem):
    async with sem:
        conn = await imap_connect(run, n % run.users, run.a.step_timeout)
        conn.send("c IDLE\r\n")
        while True:
            line = await conn.line(run.a.step_timeout)
            if line.startswith(b"+"):
                break
            if line.startswith(b"c "):
                raise RuntimeError(f"IDLE refused: {line!r}")
            if not line.startswith(b"* "):
                raise RuntimeError(f"before +: {line!r}")
        conn.exists = conn.base
        conn.enter_idle()
        return conn


async def close_idle(conn, timeout):
    """DONE, expect the tagged OK of IDLE; LOGOUT. Returns an error text or None."""
    if conn.closed:
        return "closed before DONE"
    conn.leaving = True
    conn.idle = False
    try:
        conn.send("DONE\r\n")
        await conn.until_tagged("c", timeout)
        conn.send("z LOGOUT\r\n")
        await conn.until_tagged("z", timeout)
    except Exception as e:  # noqa: BLE001 - reported
        return f"DONE/LOGOUT: {e!r}"
    finally:
        conn.transport.close()
    return None


async def probe(run):
    """A fresh login + SELECT INBOX + LOGOUT; returns seconds, raises on failure."""
    t0 = time.monotonic()
    conn = await imap_connect(run, 0, run.a.probe_max * 4)
    conn.leaving = True
    try:
        await conn.command("z", "LOGOUT", run.a.probe_max * 4)
    finally:
        conn.transport.close()
    return time.monotonic() - t0


# ---------------------------------------------------------------------------------------------
# SMTP


async def smtp_reply(reader, timeout):
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by the server")
        lines.append(line.decode(errors="replace").rstrip())
        if len(line) < 4 or line[3:4] != b"-":
            return int(lines[-1][:3]), " | ".join(lines)


def message(j, rcpt, size):
    filler_line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    body = filler_line * max(1, size // len(filler_line))
    return (
        f"From: Load Generator <loadgen@example.org>\r\n"
        f"To: <{rcpt}>\r\n"
        f"Subject: load message {j}\r\n"
        f"Message-ID: <load-{j}-{os.getpid()}@example.org>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"{body}.\r\n"
    ).encode()


async def smtp_worker(run, w, jobs):
    a = run.a
    while True:
        j = next(jobs, None)
        if j is None:
            return
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(a.host, a.smtp_port), a.step_timeout)

            async def step(text, want, what=None):
                if text is not None:
                    writer.write(text)
                code, reply = await smtp_reply(reader, a.step_timeout)
                if code != want:
                    what = what or (text.split(b"\r\n")[0].decode() if text else "greeting")
                    raise RuntimeError(f"{what} -> {reply}")

            await step(None, 220)
            await step(b"EHLO loadgen.example.org\r\n", 250)
            sent = 0
            while j is not None:
                rcpt_index = j % run.users
                rcpt = run.user(rcpt_index)
                await step(b"MAIL FROM:<loadgen@example.org>\r\n", 250)
                await step(f"RCPT TO:<{rcpt}>\r\n".encode(), 250)
                await step(b"DATA\r\n", 354)
                t0 = time.monotonic()
                await step(message(j, rcpt, a.size), 250, "end of data")
                t1 = time.monotonic()
                run.acked(rcpt_index, t1, t1 - t0)
                sent += 1
                j = next(jobs, None) if (a.per_conn == 0 or sent < a.per_conn) else None
            await step(b"QUIT\r\n", 221)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            run.smtp_failure(f"message {j}, session {w}: {e!r}")
            if len(run.smtp_errors) > 100:
                return
        finally:
            if writer is not None:
                writer.close()


# ---------------------------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, a):
        self.a = a
        self.users = min(a.users, a.conns) if a.conns else a.users
        self.server = Server(a.server_pid)
        self.sessions = []
        self.imap_errors = []
        self.imap_error_sessions = set()
        self.smtp_errors = []
        self.acks = {}  # user index -> sorted 250 times
        self.data_s = []  # time from the end of DATA to its 250
        self.pending = 0
        self.all_reached = None
        self.result = {}

    def user(self, index):
        return self.a.user_pattern.replace("%d", str(index + 1))

    def imap_error(self, conn, text):
        self.imap_error_sessions.add(id(conn))
        if len(self.imap_errors) < 1000:
            self.imap_errors.append(f"{self.user(conn.user_index)}: {text}")

    def smtp_failure(self, text):
        self.smtp_errors.append(text)
        log("SMTP failure:", text)

    def acked(self, user_index, t, data_s):
        self.acks.setdefault(user_index, []).append(t)
        self.data_s.append(data_s)

    def session_reached(self, conn):
        self.pending -= 1
        if self.pending == 0 and self.all_reached is not None:
            self.all_reached.set()

    async def sample(self, stop, out):
        """Peak VmRSS (every 0.25 s), fds and threads (every second) until `stop` is set."""
        n = 0
        while not stop.is_set():
            rss, anon = self.server.rss_kib()
            out["rss_kib"] = max(out.get("rss_kib", 0), rss)
            out["anon_kib"] = max(out.get("anon_kib", 0), anon)
            if n % 4 == 0:
                out["fds"] = max(out.get("fds") or 0, self.server.fds() or 0)
                out["threads"] = max(out.get("threads") or 0, self.server.status().get("Threads", 0))
            n += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    async def loop_lag(self, stop, out):
        """The longest time this script's event loop was busy beyond a 50 ms sleep."""
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.05)
            out["max"] = max(out.get("max", 0.0), time.monotonic() - t - 0.05)

    async def probes(self, stop, times, errors):
        while not stop.is_set():
            try:
                times.append(await probe(self))
            except Exception as e:  # noqa: BLE001 - reported
                errors.append(f"probe: {e!r}")
            try:
                await asyncio.wait_for(stop.wait(), self.a.probe_interval)
            except asyncio.TimeoutError:
                pass

    async def main(self):
        a, r, srv = self.a, self.result, self.server
        r["loadavg_start"] = loadavg()
        r["server_before"] = srv.snapshot()

        # 1. K sessions into IDLE.
        log(f"opening {a.conns} IDLE sessions over {self.users} users ({a.parallel} at a time)")
        sem = asyncio.Semaphore(a.parallel)
        t0 = time.monotonic()
        results = await asyncio.gather(*(open_idle(self, n, sem) for n in range(a.conns)),
                                       return_exceptions=True)
        r["open_s"] = round(time.monotonic() - t0, 2)
        self.sessions = [c for c in results if isinstance(c, ImapConn)]
        open_errors = [repr(e) for e in results if not isinstance(e, ImapConn)]
        r["opened"] = len(self.sessions)
        r["open_errors"] = len(open_errors)
        r["open_errors_first"] = open_errors[:3]
        log(f"{len(self.sessions)} sessions in IDLE after {r['open_s']} s; {len(open_errors)} failed"
            + (f": {open_errors[0]}" if open_errors else ""))
        await asyncio.sleep(a.settle)
        r["server_idle"] = srv.snapshot()
        probe_times, probe_errors = [], []
        try:
            probe_times.append(await probe(self))
        except Exception as e:  # noqa: BLE001 - reported
            probe_errors.append(f"probe before ingest: {e!r}")
        if open_errors and not a.keep_going:
            return await self.finish(probe_times, probe_errors, {}, {}, None)

        # 2. S SMTP sessions deliver M messages while the K sessions idle.
        log(f"delivering {a.messages} messages over {a.smtp_sessions} SMTP sessions")
        stop = asyncio.Event()
        peak, lag = {}, {}
        tasks = [asyncio.create_task(self.sample(stop, peak)),
                 asyncio.create_task(self.loop_lag(stop, lag)),
                 asyncio.create_task(self.probes(stop, probe_times, probe_errors))]
        jobs = iter(range(a.messages))
        cpu0 = srv.cpu_s()
        t0 = time.monotonic()
        await asyncio.gather(*(smtp_worker(self, w, jobs) for w in range(a.smtp_sessions)))
        t_smtp = time.monotonic() - t0
        cpu_smtp = srv.cpu_s()
        acked = sum(len(v) for v in self.acks.values())
        r["smtp_s"] = round(t_smtp, 2)
        r["smtp_acked"] = acked
        r["smtp_msgs_per_s"] = round(acked / t_smtp, 1) if t_smtp else None
        r["smtp_data_to_250_s"] = summary(self.data_s)
        log(f"{acked} messages acknowledged in {t_smtp:.1f} s ({r['smtp_msgs_per_s']}/s), "
            f"{len(self.smtp_errors)} failures")

        # 3. Every IDLE session must report its user's final count.
        self.all_reached = asyncio.Event()
        self.pending = len(self.sessions)
        for c in self.sessions:
            c.set_target(c.base + len(self.acks.get(c.user_index, [])))
        if self.pending > 0:
            try:
                await asyncio.wait_for(self.all_reached.wait(), a.exists_timeout)
            except asyncio.TimeoutError:
                pass
        t_all = time.monotonic() - t0
        r["exists_all_s"] = round(t_all, 2)
        r["exists_after_last_250_s"] = round(t_all - t_smtp, 2)
        stop.set()
        await asyncio.gather(*tasks)
        if cpu0 is not None:
            r["server_cpu_s_smtp"] = round(cpu_smtp - cpu0, 1)
            r["server_cpu_s_ingest"] = round(srv.cpu_s() - cpu0, 1)
        r["server_peak_ingest"] = {
            "rss_mib": round(peak.get("rss_kib", 0) / 1024, 1),
            "anon_mib": round(peak.get("anon_kib", 0) / 1024, 1),
            "fds": peak.get("fds"),
            "threads": peak.get("threads"),
        }
        r["client_loop_stall_max_s"] = round(lag.get("max", 0.0), 3)
        r["server_after_ingest"] = srv.snapshot()
        return await self.finish(probe_times, probe_errors, peak, lag, t0)

    def latencies(self):
        """For every session and every k: time from the k-th 250 for its user (by arrival) to
        the first EXISTS >= base + k on that session. When the k-th 250 arrived, k messages were
        committed, so this is how long the session lagged behind what SMTP clients knew."""
        out = []
        for c in self.sessions:
            acks = self.acks.get(c.user_index)
            if not acks:
                continue
            times = [t for t, _ in c.events]
            counts = [n for _, n in c.events]
            # counts are non-decreasing for a session without expunges
            for k, t_ack in enumerate(acks, start=1):
                i = bisect.bisect_left(counts, c.base + k)
                if i < len(times):
                    out.append(max(0.0, times[i] - t_ack))
        return out

    async def finish(self, probe_times, probe_errors, peak, lag, t_ingest):
        a, r, srv = self.a, self.result, self.server
        missing = [c for c in self.sessions if c.target is not None and not c.reached]
        r["idle_sessions_reached"] = sum(1 for c in self.sessions if c.reached)
        r["idle_sessions_missing"] = len(missing)
        r["idle_missing_first"] = [
            f"{self.user(c.user_index)}: EXISTS {c.exists}, expected {c.target}"
            + (" (connection closed)" if c.closed else "") for c in missing[:5]]
        lat = self.latencies()
        r["exists_latency_s"] = summary(lat)
        r["exists_lines"] = sum(len(c.events) for c in self.sessions)
        r["idle_other_untagged"] = sum(c.other for c in self.sessions)
        r["over_target"] = sum(1 for c in self.sessions
                               if c.target is not None and c.exists is not None and c.exists > c.target)
        r["probe_s"] = summary(probe_times)
        r["probe_errors"] = probe_errors[:5]

        # 4. DONE + LOGOUT everywhere.
        log(f"ending {len(self.sessions)} IDLE sessions")
        closes = await asyncio.gather(*(close_idle(c, a.step_timeout) for c in self.sessions))
        close_errors = [e for e in closes if e]
        r["close_errors"] = len(close_errors)
        r["close_errors_first"] = close_errors[:3]
        await asyncio.sleep(a.settle)
        r["server_after_close"] = srv.snapshot()
        r["imap_errors"] = len(self.imap_errors)
        r["imap_error_sessions"] = len(self.imap_error_sessions)
        r["imap_errors_first"] = self.imap_errors[:5]
        r["smtp_errors"] = len(self.smtp_errors)
        r["smtp_errors_first"] = self.smtp_errors[:5]
        r["loadavg_end"] = loadavg()
        failures = []
        if r["opened"] != a.conns:
            failures.append(f"{a.conns - r['opened']} IDLE sessions could not be opened")
        if self.smtp_errors or r.get("smtp_acked", 0) != a.messages:
            failures.append(f"{a.messages - r.get('smtp_acked', 0)} messages without 250")
        if self.imap_errors:
            failures.append(f"{len(self.imap_error_sessions)} IMAP sessions dropped or got errors")
        if missing:
            failures.append(f"{len(missing)} IDLE sessions did not report their final EXISTS")
        if r["over_target"]:
            failures.append(f"{r['over_target']} IDLE sessions saw more messages than were acknowledged")
        if probe_errors:
            failures.append(f"{len(probe_errors)} probe logins failed")
        if probe_times and max(probe_times) > a.probe_max:
            failures.append(f"a probe login + SELECT took {max(probe_times):.2f} s (> {a.probe_max})")
        if close_errors:
            failures.append(f"{len(close_errors)} IDLE sessions did not end cleanly")
        if t_ingest is None:
            failures.append("ingest not run")
        r["failures"] = failures
        r["ok"] = not failures
        return r


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--imap-port", type=int, required=True)
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument("--users", "-u", type=int, default=100, help="users user1..userU")
    p.add_argument("--user-pattern", default="user%d@bench.test", help="%%d is the user number")
    p.add_argument("--password", default="benchpass")
    p.add_argument("--conns", "-k", type=int, default=10000, help="IDLE sessions")
    p.add_argument("--smtp-sessions", "-s", type=int, default=50, help="concurrent SMTP sessions")
    p.add_argument("--messages", "-m", type=int, default=5000)
    p.add_argument("--per-conn", type=int, default=10,
                   help="messages per SMTP connection before reconnecting (0: never reconnect)")
    p.add_argument("--size", type=int, default=2048, help="approximate body bytes")
    p.add_argument("--parallel", type=int, default=100, help="IMAP sessions being set up at once")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to wait before a memory reading")
    p.add_argument("--step-timeout", type=float, default=60.0, help="per protocol step (s)")
    p.add_argument("--exists-timeout", type=float, default=120.0,
                   help="after the last 250, how long every IDLE session gets to report it (s)")
    p.add_argument("--probe-interval", type=float, default=1.0)
    p.add_argument("--probe-max", type=float, default=5.0,
                   help="a fresh login + SELECT + LOGOUT taking longer fails the run (s)")
    p.add_argument("--server-pid", type=int)
    p.add_argument("--server-pidfile")
    p.add_argument("--raise-server-nofile", action="store_true",
                   help="raise the server's soft RLIMIT_NOFILE to its hard limit if too low "
                        "for the run (for servers started by a harness with a low soft limit)")
    p.add_argument("--keep-going", action="store_true", help="ingest even if sessions failed to open")
    a = p.parse_args()
    if a.server_pidfile and not a.server_pid:
        with open(a.server_pidfile) as f:
            a.server_pid = int(f.read().split()[0])
    return a


def main():
    a = parse_args()
    need = a.conns + a.smtp_sessions + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            log(f"RLIMIT_NOFILE hard limit {hard} is below the {need} descriptors needed")
            return 2
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run = Run(a)
    if a.server_pid:
        s_soft, s_hard = run.server.nofile()
        run.result["server_nofile"] = [s_soft, s_hard]
        if s_soft != resource.RLIM_INFINITY and s_soft < need + 64:
            if a.raise_server_nofile:
                resource.prlimit(a.server_pid, resource.RLIMIT_NOFILE, (s_hard, s_hard))
                log(f"raised the server's RLIMIT_NOFILE from {s_soft} to {s_hard}")
                run.result["server_nofile_raised_to"] = s_hard
            else:
                log(f"warning: the server's RLIMIT_NOFILE is {s_soft}; {need} connections will not fit")
    t0 = time.monotonic()
    result = asyncio.run(run.main())
    result.update(conns=a.conns, users=run.users, smtp_sessions=a.smtp_sessions,
                  messages=a.messages, per_conn=a.per_conn, size=a.size,
                  server_pid=a.server_pid, wall_s=round(time.monotonic() - t0, 1))
    for f in result["failures"]:
        log("FAIL:", f)
    log("ok" if result["ok"] else "FAILED")
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
