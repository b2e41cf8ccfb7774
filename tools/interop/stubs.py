"""Generates the Python gRPC stubs of Hark's schemas and makes them importable.

Importing this module runs grpc_tools.protoc over every .proto file under <repo>/proto (import
root proto/) into <repo>/.build/interop-stubs/, unless the stubs there are newer than every
.proto file, and puts that directory first on sys.path. Afterwards, for example:

    from hark.testing.v1 import echo_pb2, echo_pb2_grpc
    from nuance.asr.v1 import recognizer_pb2, recognizer_pb2_grpc
"""

import fcntl
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_ROOT = os.path.join(REPO, "proto")
STUBS_DIR = os.path.join(REPO, ".build", "interop-stubs")
STAMP = os.path.join(STUBS_DIR, ".stamp")


def _proto_files():
    files = []
    for directory, _, names in os.walk(PROTO_ROOT):
        files.extend(os.path.join(directory, n) for n in names if n.endswith(".proto"))
    return sorted(files)


def _up_to_date(protos):
    try:
        stamp = os.stat(STAMP).st_mtime
    except FileNotFoundError:
        return False
    newest = max([os.stat(p).st_mtime for p in protos] + [os.stat(__file__).st_mtime])
    return newest < stamp


def _generate(protos):
    from grpc_tools import protoc
    import grpc_tools

    parent = os.path.dirname(STUBS_DIR)
    os.makedirs(parent, exist_ok=True)
    # Generate into a fresh directory and swap it in, so a half-written tree is never used.
    staging = tempfile.mkdtemp(prefix=".interop-stubs-", dir=parent)
    try:
        well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}",
                f"--python_out={staging}", f"--pyi_out={staging}", f"--grpc_python_out={staging}"]
        args += [os.path.relpath(p, PROTO_ROOT) for p in protos]
        cwd = os.getcwd()
        os.chdir(PROTO_ROOT)
        try:
            code = protoc.main(args)
        finally:
            os.chdir(cwd)
        if code != 0:
            raise RuntimeError(f"grpc_tools.protoc failed with exit code {code}")
        # Regular packages, so that e.g. `nuance` does not clash with another namespace.
        for directory, _, _ in os.walk(staging):
            if directory != staging:
                open(os.path.join(directory, "__init__.py"), "a").close()
        open(os.path.join(staging, ".stamp"), "w").close()
        if os.path.isdir(STUBS_DIR):
            shutil.rmtree(STUBS_DIR)
        os.rename(staging, STUBS_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def ensure():
    protos = _proto_files()
    if not protos:
        raise RuntimeError(f"no .proto files under {PROTO_ROOT}")
    if not _up_to_date(protos):
        os.makedirs(os.path.dirname(STUBS_DIR), exist_ok=True)
        # Several test processes may start at once: one generates, the others wait.
        with open(os.path.join(os.path.dirname(STUBS_DIR), ".interop-stubs.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _up_to_date(protos):
                _generate(protos)
    if STUBS_DIR not in sys.path:
        sys.path.insert(0, STUBS_DIR)
    return STUBS_DIR


ensure()
