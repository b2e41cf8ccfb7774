"""What tools/bench-transport and tools/bench-recognize share: building the Swift benchmark
executables, pinning, and reading another process's CPU time and memory from /proc."""

import os
import select
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Release builds without runtime exclusivity checks, as tools/hark builds (see README.md).
SCRATCH = os.path.join(ROOT, "Benchmarks", ".build-unchecked")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Failure(Exception):
    pass


def log(tool, message):
    print(f"{tool}: {message}", file=sys.stderr, flush=True)


def build(product, tool):
    """Builds a Benchmarks product (release, exclusivity checks off); its path, or Failure."""
    # SwiftPM keeps a nested package's build plan even when files are added to the package it
    # depends on; drop the plan so new sources are seen.
    try:
        os.remove(os.path.join(SCRATCH, "release", "description.json"))
    except FileNotFoundError:
        pass
    command = [
        "swift", "build", "-c", "release",
        "--package-path", os.path.join(ROOT, "Benchmarks"),
        "--scratch-path", SCRATCH,
        "--product", product,
        "-Xswiftc", "-enforce-exclusivity=unchecked",
    ]  # fmt: skip
    log(tool, f"building {product} (release, exclusivity checks off)")
    try:
        status = subprocess.run(command, cwd=ROOT, stdout=sys.stderr).returncode
    except OSError as error:
        raise Failure(f"swift build: {error}")
    if status != 0:
        raise Failure(f"swift build failed (exit {status})")
    path = os.path.join(SCRATCH, "release", product)
    if not os.access(path, os.X_OK):
        raise Failure(f"swift build produced no {os.path.relpath(path, ROOT)}")
    return path


def bootstrap(tool):
    status = subprocess.run([os.path.join(ROOT, "tools", "bootstrap")], cwd=ROOT).returncode
    if status != 0:
        raise Failure(f"tools/bootstrap failed (exit {status})")


def can_pin():
    import shutil

    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(command, cpu, no_pin):
    return command if no_pin else ["taskset", "-c", str(cpu)] + command


def cpu_seconds(pid):
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Fields after the command name (which may contain spaces and parentheses): state is field
    # 3, utime field 14, stime field 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def resident_bytes(pid):
    """The resident set of a process, from /proc/<pid>/statm."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def excerpt(path, markers=(), lines=2, width=200):
    """The first lines of a side's stderr log (without the markers), for a table."""
    try:
        with open(path, errors="replace") as f:
            text = [line.strip() for line in f if line.strip() and line.strip() not in markers]
    except OSError:
        return ""
    return " / ".join(line[:width] for line in text[:lines])


def start_server(command, log_path, timeout):
    """Starts a server that prints 'LISTENING <port>' on stdout; (process, port) or Failure."""
    with open(log_path, "w") as err:
        server = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=ROOT
        )
    ready, _, _ = select.select([server.stdout], [], [], timeout)
    line = server.stdout.readline().decode(errors="replace").strip() if ready else ""
    words = line.split()
    if len(words) != 2 or words[0] != "LISTENING" or not words[1].isdigit():
        stop_server(server, 10)
        raise Failure(
            f"server: expected 'LISTENING <port>', got {line!r} "
            f"(exit {server.returncode}) {excerpt(log_path)}".strip()
        )
    return server, int(words[1])


def stop_server(server, timeout):
    """Closes the server's stdin (its signal to stop); kills it if it does not exit in time.
    None, or what went wrong."""
    try:
        server.stdin.close()
    except OSError:
        pass
    try:
        server.wait(timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return "did not exit after stdin EOF; killed"
    return None
