"""The supervisor half of the results channel (see `channel`): a stdlib-only script run with
`python -I` in the sandbox. It holds the run's nonce, never imports the work tree, and prints
the nonce-marked lines the grader reads only after every other process of the run is dead."""

SUPERVISOR = r'''"""candlebench's test supervisor: holds the run's nonce, never imports the work tree."""
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time

MARK = "@@candlebench"
RESULTS_CAP = 64 << 20
DRAIN_S = 1.0


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def prctl(option, value):
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root):
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        found |= frontier
    return found


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants():
    """SIGKILL everything below us (a subreaper: orphans are ours too) until nothing is left."""
    for _ in range(200):
        pids = descendants(os.getpid())
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
        reap()
    return False


def check(stream, exit_code):
    """(runner started, statuses, exit status, problems) from the child's records."""
    problems, records = [], []
    lines = stream.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        try:
            record = json.loads(line.decode())
            kind = record["kind"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            problems.append("the results channel carried something that is not a runner record")
            continue
        records.append((kind, record))
    if not records or records[0][0] != "start":
        return False, {}, None, problems
    token = records[0][1].get("token")
    finals = [r for k, r in records if k == "final"]
    others = [k for k, _ in records[1:] if k != "final"]
    if others or any(k == "start" for k, _ in records[1:]):
        problems.append("the results channel carried records besides the runner's start and final")
    if not finals:
        problems.append("the test process ended (exit %s) without writing its results" % exit_code)
        return True, {}, None, problems
    if len(finals) > 1 or records[-1][0] != "final":
        problems.append("the results channel carried %d final records" % len(finals))
    final = finals[-1]
    if final.get("token") != token:
        problems.append("the final record does not carry the session's token")
    problems += ["integrity: " + str(p) for p in final.get("integrity", [])]
    statuses = {str(k): str(v) for k, v in dict(final.get("statuses") or {}).items()}
    return True, statuses, final.get("exitstatus"), problems


def main():
    nonce = sys.stdin.buffer.readline().decode().strip()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    protected = prctl(4, 0)  # PR_SET_DUMPABLE: /proc/<us>/mem and /proc/<us>/fd are root's now
    subreaper = prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: daemonised grandchildren stay ours
    write_all(1, ("%s-supervisor started\n" % MARK).encode())
    child, changed, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    env = dict(os.environ)
    pythonpath = env.pop("PYTHONPATH", None)
    results_r, results_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-P", "-s", "-B", child, str(results_w), changed, json.dumps(pythonpath), *args],
        stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, pass_fds=(results_w,), env=env,
    )
    for fd in (results_w, out_w, err_w):
        os.close(fd)
    targets = {out_r: 1, err_r: 2, results_r: None}
    stream, overflow, exited_at = bytearray(), False, None
    while targets:
        if exited_at is None and proc.poll() is not None:
            exited_at = time.monotonic()
        if exited_at is not None and time.monotonic() - exited_at > DRAIN_S:
            break  # a leftover holds the pipes: it is killed below
        ready, _, _ = select.select(list(targets), [], [], 0.1)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                del targets[fd]
            elif targets[fd] is not None:
                write_all(targets[fd], chunk)
            elif len(stream) + len(chunk) > RESULTS_CAP:
                overflow = True
            else:
                stream += chunk
    exit_code = proc.wait()
    swept = kill_descendants()
    reap()
    started, statuses, exitstatus, problems = check(bytes(stream), exit_code)
    if overflow:
        problems.append("the results channel passed its cap")
    if not swept:
        problems.append("processes of the run could not all be stopped before reporting")
    if not (protected and subreaper):
        problems.append("the supervisor could not protect itself (prctl failed)")
    marked = ["start", "runner %d" % int(started)]
    marked += ["invalid " + p.replace("\n", " ") for p in problems]
    marked += ["%s %s" % (s, n.replace("\n", " ")) for n, s in statuses.items()]
    status = exitstatus if isinstance(exitstatus, int) else exit_code
    marked.append("end %d %d" % (len(statuses), status))
    for line in marked:  # one write per line: a line below PIPE_BUF is never interleaved
        write_all(1, ("\n%s %s %s" % (MARK, nonce, line)).encode())
    write_all(1, b"\n")
    sys.exit(status if 0 <= status < 256 else 1)


main()
'''
