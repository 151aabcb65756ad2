"""tests/forkserver.py, the warm python the Make tests hand to make as PY=: a command run through it behaves as the
same command run by the real interpreter (output, exit status, the signal that killed it, argv, sys.path[0],
working directory, environment, stdin), and it steps aside (execs the real interpreter) whenever it could not
be the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import BASE_ENV, ROOT, make_python

PROBE = textwrap.dedent("""
    import json, os, sys
    line = sys.stdin.readline().strip()
    print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(), "name": __name__, "stdin": line,
                      "env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "XSTILTS_FORKSERVER")},
                      "torch_loaded_before_me": "torch" in sys.modules}))
    print("to stderr", file=sys.stderr)
    how = sys.argv[1] if len(sys.argv) > 1 else ""
    if how == "exit3":
        sys.exit(3)
    if how == "message":
        sys.exit("a message to stderr")
    if how == "raise":
        raise ValueError("boom")
    if how == "kill":
        os.kill(os.getpid(), 9)
    if how == "interrupt":
        raise KeyboardInterrupt
""")


@pytest.fixture(scope="module")
def warm():
    env = dict(BASE_ENV)
    py, served_env = make_python(env)
    if py == sys.executable:
        pytest.skip("XSTILTS_TEST_FORKSERVER=0: the Make tests run real processes, there is no server to test")
    return py.split(), served_env, env


def _both(warm, argv, tmp_path, stdin="hello\n"):
    client, served_env, plain_env = warm
    out = []
    for cmd, env in ((client, served_env), ([sys.executable], plain_env)):
        out.append(subprocess.run([*cmd, *argv], cwd=tmp_path, env=env, input=stdin, capture_output=True,
                                  text=True, timeout=60))
    return out


@pytest.mark.parametrize("how,code", [("", 0), ("exit3", 3), ("message", 1), ("raise", 1), ("kill", -9),
                                      ("interrupt", -2)])
def test_a_script_runs_as_under_the_real_interpreter(warm, tmp_path, how, code):
    (tmp_path / "sub").mkdir()
    script = tmp_path / "sub" / "probe.py"
    script.write_text(PROBE)
    served, real = _both(warm, ["sub/probe.py", *([how] if how else [])], tmp_path)
    assert served.returncode == real.returncode == code, (served.stderr, real.stderr)
    s, r = json.loads(served.stdout.splitlines()[0]), json.loads(real.stdout.splitlines()[0])
    assert s["torch_loaded_before_me"] and not r["torch_loaded_before_me"]  # it was served warm
    s.pop("torch_loaded_before_me"), r.pop("torch_loaded_before_me")
    assert s == r and s["argv"][0] == "sub/probe.py" and s["path0"] == str(tmp_path / "sub") and s["stdin"] == "hello"
    assert s["name"] == "__main__" and s["env"]["XSTILTS_FORKSERVER"] is None and s["env"]["HF_HUB_OFFLINE"] == "1"
    if how in ("raise", "interrupt"):  # the same last line (the traceback of the served run has runpy's frames)
        assert served.stderr.splitlines()[-1] == real.stderr.splitlines()[-1]
        assert served.stderr.splitlines()[-1] == {"raise": "ValueError: boom", "interrupt": "KeyboardInterrupt"}[how]
    else:
        assert served.stderr == real.stderr


def test_a_module_and_a_kit_command_run_as_under_the_real_interpreter(warm, tmp_path):
    served, real = _both(warm, ["-m", "xstilts.score", "--prediction_folder", str(tmp_path / "nope"),
                                "--label_folder", str(tmp_path), "--xtreme_version", "xtreme-r"], ROOT)
    assert served.returncode == real.returncode == 2 and served.stderr == real.stderr and served.stdout == real.stdout
    served, real = _both(warm, [str(ROOT / "run_target.py"), "--task", "nope"], tmp_path)
    assert served.returncode == real.returncode == 2 and served.stderr == real.stderr
    assert "unknown task 'nope'" in served.stderr


def test_a_different_environment_or_unknown_option_runs_the_real_interpreter(warm, tmp_path):
    client, served_env, _ = warm
    home = os.path.dirname(served_env["XSTILTS_FORKSERVER"])
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    for argv, env in ((["probe.py"], {"HF_DATASETS_CACHE": str(tmp_path / "other")}),  # read at import time
                      (["-u", "probe.py"], {})):
        p = subprocess.run([*client, *argv], cwd=tmp_path, env=dict(served_env, **env), input="", capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0 and not json.loads(p.stdout.splitlines()[0])["torch_loaded_before_me"], argv
    log = [json.loads(line) for line in open(os.path.join(home, "served.log"))]
    assert any("HF_DATASETS_CACHE" in e["env_differs"] for e in log)
    # a variable given to make on its command line is not a reason (make exports it to every recipe)...
    p = subprocess.run([*client, "probe.py"], cwd=tmp_path, input="", capture_output=True, text=True, timeout=60,
                       env=dict(served_env, RESULTS="/x", MAKEFLAGS=" -- RESULTS=/x"))
    assert json.loads(p.stdout.splitlines()[0])["torch_loaded_before_me"]
    # ... unless it is a name a library reads
    p = subprocess.run([*client, "probe.py"], cwd=tmp_path, input="", capture_output=True, text=True, timeout=120,
                       env=dict(served_env, HF_HOME="/x", MAKEFLAGS=" -- HF_HOME=/x"))
    assert not json.loads(p.stdout.splitlines()[0])["torch_loaded_before_me"]


def test_signals_reach_the_child(warm, tmp_path):
    client, served_env, _ = warm
    (tmp_path / "sleeper.py").write_text(textwrap.dedent("""
        import signal, sys, time
        def handler(signum, frame):
            print("got", signum, flush=True)
            sys.exit(143)
        signal.signal(signal.SIGTERM, handler)
        print("ready", flush=True)
        time.sleep(60)
    """))
    p = subprocess.Popen([*client, "sleeper.py"], cwd=tmp_path, env=served_env, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 143 and p.stdout.read().strip() == f"got {int(signal.SIGTERM)}"


SHARED_SUITE = textwrap.dedent("""
    import os, time, pytest

    @pytest.fixture(scope="module")
    def shared(tmp_path_factory):
        with open(os.environ["LOG"], "a") as f:
            f.write("built\\n")
        return os.environ.get("PYTEST_XDIST_WORKER")

    def test_a(shared):
        time.sleep(0.3)
        with open(os.environ["LOG"], "a") as f:
            f.write(f"a {shared} {os.environ.get('PYTEST_XDIST_WORKER')}\\n")

    def test_b(shared):
        time.sleep(0.3)
        with open(os.environ["LOG"], "a") as f:
            f.write(f"b {shared} {os.environ.get('PYTEST_XDIST_WORKER')}\\n")

    def test_alone_1():
        time.sleep(0.3)

    def test_alone_2():
        time.sleep(0.3)
""")


def test_tests_sharing_a_module_fixture_run_on_one_worker(tmp_path):
    """`make test`'s -n 2 --dist loadgroup with tests/xdist_groups.py: the two tests of a module fixture run on one
    worker and the fixture is built once (before the fix, pytest 9 + xdist 3.8 ran them on both workers and built it
    twice)."""
    (tmp_path / "test_shared.py").write_text(SHARED_SUITE)
    (tmp_path / "conftest.py").write_text("from xdist_groups import pytest_configure  # noqa\n"
                                          "from xdist_groups import pytest_collection_modifyitems_groups  # noqa\n"
                                          "from xdist_groups import pytest_collection_modifyitems_group_ids  # noqa\n")
    log = tmp_path / "log.txt"
    env = dict(BASE_ENV, LOG=str(log), PYTHONPATH=os.pathsep.join([str(ROOT / "tests"),
                                                                   os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = log.read_text().splitlines()
    assert lines.count("built") == 1, lines
    ran = {line.split()[0]: line.split()[1:] for line in lines if line != "built"}
    assert ran["a"][1] == ran["b"][1] == ran["a"][0]  # one worker, the one that built the fixture
