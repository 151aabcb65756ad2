"""A warm Python for the tests that drive Make (`make grid`, `make xtreme-r`, `make demo`, `make calibrate`).

Every cell Make starts is a new Python process, and about 4 of the 7 seconds a tiny cell takes are spent importing
torch and transformers. Here one server process per test worker imports them once; the tests hand Make
``PY="<python> tests/forkserver.py"``, and each ``$(PY) run_target.py ...`` connects to the server, which forks a
child that runs the script as ``python`` would (``__main__``, ``sys.argv``, ``sys.path[0]``, working directory,
environment, the caller's stdin/stdout/stderr, the exit status or the killing signal, signals forwarded). The child
is a fresh process from Make's point of view; only the imports are inherited.

It stands in for ``python`` only where that cannot change a result:
* the caller's environment must equal the one the server imported under (modules read HF_*, OMP_* and the like at
  import time), but for what make and the shell set for every command (MAKEFLAGS, ...) and the variables given to
  make on its command line (make exports them; none of them is a name a library reads): any other difference, or
  a Python option it does not know, and the client execs the real interpreter instead (``served.log`` and
  ``counts.json`` in the server's folder say which); torchrun's per-process variables (RANK, WORLD_SIZE, ...)
  are taken too: torch.distributed reads them when the run initialises, not at import;
* without ``XSTILTS_FORKSERVER`` in the environment (no server) it is the real interpreter too;
* ``XSTILTS_TEST_FORKSERVER=0 make test`` runs every Make test with real processes
  (tests/test_forkserver.py checks that both ways give the same output, exit status and files).
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys

ENV_KEY = "XSTILTS_FORKSERVER"  # the server's socket path; dropped from the environment the script sees
# set by make / the shell for every command, read by nothing at import time: not part of the comparison
VOLATILE = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR", "PWD", "OLDPWD",
            "SHLVL", "_", "PYTEST_CURRENT_TEST", ENV_KEY)


# names libraries read from the environment (at import or later): never ignored, wherever they come from
READ_BY_LIBRARIES = ("HF_", "HUGGINGFACE", "TRANSFORMERS", "DATASETS", "TOKENIZERS", "TORCH", "PYTORCH", "CUDA",
                     "NCCL", "OMP_", "MKL", "OPENBLAS", "KMP_", "ACCELERATE", "DS_", "DEEPSPEED", "PYTHON", "XSTILTS",
                     "WANDB", "LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_", "LD_", "PATH", "HOME", "TMP", "LANG",
                     "LC_", "TZ")


# what torchrun (torch.distributed.run) sets for each process it starts: read when the run initialises
# torch.distributed and the Trainer (after the imports), not when a module is imported
LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "GROUP_RANK", "ROLE_RANK", "ROLE_NAME", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                      "GROUP_WORLD_SIZE", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                      "TORCH_NCCL_ASYNC_ERROR_HANDLING")  # and every TORCHELASTIC_* (the agent's own)


def launcher_variable(name: str) -> bool:
    return name in LAUNCHER_VARIABLES or name.startswith("TORCHELASTIC_")


def _make_overrides(env: dict) -> set[str]:
    """Variables given to make on its command line (make exports them to every recipe; MAKEFLAGS lists them after
    ``--``), except names a library could read."""
    flags = env.get("MAKEFLAGS", "")
    if " -- " not in f" {flags} ":
        return set()
    tail = f" {flags} ".split(" -- ", 1)[1]
    names = {w.split("=", 1)[0] for w in tail.split() if "=" in w and not w.startswith("=")}
    return {n for n in names if not n.upper().startswith(READ_BY_LIBRARIES)}


def _comparable(env: dict, ignore: set[str] = frozenset()) -> dict:
    return {k: v for k, v in env.items() if k not in VOLATILE and not launcher_variable(k) and k not in ignore}


def _parse(argv: list[str]):
    """python's command line -> (kind, target, args) for ``script.py``, ``-m module`` and ``-c code``; None for
    anything else (options this client does not reproduce)."""
    if not argv:
        return None
    if argv[0] == "-m" and len(argv) > 1:
        return "module", argv[1], argv[2:]
    if argv[0] == "-c" and len(argv) > 1:
        return "code", argv[1], argv[2:]
    if argv[0].startswith("-"):
        return None
    return "script", argv[0], argv[1:]


# --------------------------------------------------------------------------------------------------- client
def _exec_real(argv: list[str]) -> None:
    env = dict(os.environ)
    env.pop(ENV_KEY, None)
    os.execve(sys.executable, [sys.executable, *argv], env)


def _recv_line(conn: socket.socket) -> dict | None:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf)


def client(argv: list[str]) -> None:
    path = os.environ.get(ENV_KEY)
    if not path or _parse(argv) is None:
        _exec_real(argv)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        _exec_real(argv)
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode() + b"\n"
    conn.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    first = _recv_line(conn)
    if first is None or "fallback" in first:
        conn.close()
        _exec_real(argv)
    pid = first["pid"]

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, forward)
    status = _recv_line(conn) or {"signal": signal.SIGKILL}
    if "signal" in status:  # die the way the child died, so that Make reports what it would for python
        if status["signal"] not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(status["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), status["signal"])
    os._exit(status["exit"])


# --------------------------------------------------------------------------------------------------- server
def _run_child(request: dict, fds: list[int], side_effects: dict) -> None:
    """In the forked child: become ``python <argv>`` and never return."""
    import atexit
    import runpy
    import traceback

    # signal handlers: the server's are python's start-up ones plus what the imports installed, as in a real
    # process. `random` re-seeds itself in a forked child; numpy's global generator does not: fresh entropy, as a
    # new process would have
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    env = dict(request["env"], **side_effects)
    env.pop(ENV_KEY, None)
    os.environ.clear()
    os.environ.update(env)
    kind, target, args = _parse(request["argv"])
    code = 0
    try:
        if kind == "script":
            sys.argv = [target, *args]
            sys.path[0] = os.path.dirname(os.path.realpath(target))
            runpy.run_path(target, run_name="__main__")
        elif kind == "module":
            sys.argv = [target, *args]  # runpy puts the module's file in argv[0]
            sys.path[0] = os.getcwd()
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.argv = ["-c", *args]
            sys.path[0] = ""
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:  # python prints the traceback and dies by SIGINT
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)


def serve(path: str, preload: list[str]) -> None:
    import gc
    import importlib
    import selectors

    parent = os.getppid()
    sys.path[0] = os.getcwd()  # as for `python run_target.py` in the repository (each child sets its own)
    before = dict(os.environ)
    for name in preload:
        importlib.import_module(name)
    # what the imports themselves put in the environment (torch sets TORCHINDUCTOR_CACHE_DIR): a real process
    # does the same when it imports them, so every child gets it on top of its caller's environment
    side_effects = {k: v for k, v in os.environ.items() if before.get(k) != v}
    gc.collect()
    gc.freeze()  # imported once, kept by every child: out of the collector's scans
    home = os.path.dirname(path)
    env0 = _comparable(before)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    running: dict[int, socket.socket] = {}
    counts = {"forked": 0, "fallback": 0}
    print("ready", flush=True)
    while os.getppid() == parent:  # the test process that started it is gone: so is the server
        if sel.select(timeout=0.05):
            conn, _ = srv.accept()
            msg, anc, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_SPACE(3 * array.array("i").itemsize))
            while not msg.endswith(b"\n"):
                msg += conn.recv(1 << 20)
            fds = array.array("i")
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
            request = json.loads(msg)
            ignore = _make_overrides(request["env"])
            differs = sorted(set(_comparable(env0, ignore).items()) ^ set(_comparable(request["env"], ignore).items()))
            if differs or len(fds) != 3 or _parse(request["argv"]) is None:
                counts["fallback"] += 1
                with open(os.path.join(home, "served.log"), "a") as log:
                    log.write(json.dumps({"fallback": request["argv"][:2],
                                          "env_differs": sorted({k for k, _ in differs})}) + "\n")
                conn.sendall(b'{"fallback": true}\n')
                conn.close()
                for fd in fds:
                    os.close(fd)
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                srv.close()
                conn.close()
                _run_child(request, list(fds), side_effects)
            for fd in fds:
                os.close(fd)
            counts["forked"] += 1
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            running[pid] = conn
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = running.pop(pid, None)
            if conn is None:
                continue
            reply = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                     else {"exit": os.WEXITSTATUS(status)})
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass
            conn.close()
            with open(os.path.join(home, "counts.json"), "w") as f:
                json.dump(counts, f)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], sys.argv[3:])
    else:
        client(sys.argv[1:])
