"""flowtide.config.load_config: files, pyproject, env overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowtide.config import DEFAULT_BACKEND, Config, ConfigError, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path):
    config = load_config(root=tmp_path, environ={})
    assert isinstance(config, Config)
    assert config.backend == DEFAULT_BACKEND
    assert config.app == ["functions"]
    assert config.root == tmp_path
    assert (config.worker.concurrency, config.worker.queues) == (10, ["*"])
    assert config.flow.step_timeout == 300.0 and config.flow.stall_timeout is None
    assert config.state.cleanup == "never"
    assert config.base_url == "http://127.0.0.1:8000"


def test_flowtide_toml(tmp_path):
    write(
        tmp_path / "flowtide.toml",
        """
app = ["functions", "pkg.flows"]
backend = "memory://"
[server]
host = "0.0.0.0"
port = 9000
api_token = "s3cret"
[worker]
concurrency = 3
queues = ["a", "b"]
[flow]
step_timeout = "30s"
stall_timeout = "1h"
[state]
cleanup = "ttl"
ttl = "2d"
""",
    )
    config = load_config(root=tmp_path, environ={})
    assert config.app == ["functions", "pkg.flows"]
    assert config.backend == "memory://"
    assert (config.server.host, config.server.port, config.server.api_token) == (
        "0.0.0.0",
        9000,
        "s3cret",
    )
    assert config.base_url == "http://0.0.0.0:9000"
    assert (config.worker.concurrency, config.worker.queues) == (3, ["a", "b"])
    assert (config.flow.step_timeout, config.flow.stall_timeout) == (30.0, 3600.0)
    assert (config.state.cleanup, config.state.ttl) == ("ttl", 172800.0)
    assert config.root == tmp_path.resolve()


def test_explicit_path_and_its_directory_becomes_the_root(tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(sub / "custom.toml", 'backend = "sqlite:///data/x.db"\n')
    config = load_config(path, root=tmp_path, environ={})
    assert config.backend == "sqlite:///data/x.db"
    assert config.root == sub.resolve()


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})


def test_pyproject_tool_section(tmp_path):
    write(
        tmp_path / "pyproject.toml",
        """
[project]
name = "x"
[tool.flowtide]
backend = "memory://"
[tool.flowtide.worker]
concurrency = 7
[tool.other]
ignored = true
""",
    )
    config = load_config(root=tmp_path, environ={})
    assert config.backend == "memory://"
    assert config.worker.concurrency == 7


def test_flowtide_toml_wins_over_pyproject(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.flowtide]\nbackend = "memory://"\n')
    write(tmp_path / "flowtide.toml", 'backend = "sqlite:///a.db"\n')
    assert load_config(root=tmp_path, environ={}).backend == "sqlite:///a.db"


def test_pyproject_without_a_flowtide_section_gives_defaults(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.black]\nline-length = 80\n")
    assert load_config(root=tmp_path, environ={}).backend == DEFAULT_BACKEND


def test_env_overrides_the_file(tmp_path):
    write(tmp_path / "flowtide.toml", 'backend = "memory://"\n[worker]\nconcurrency = 3\n')
    env = {
        "FLOWTIDE_BACKEND": "sqlite:///env.db",
        "FLOWTIDE_WORKER_CONCURRENCY": "12",
        "FLOWTIDE_WORKER_QUEUES": "a, b ,c",
        "FLOWTIDE_SERVER_API_TOKEN": "tok",
        "FLOWTIDE_FLOW_STEP_TIMEOUT": "10s",
        "FLOWTIDE_APP": "x,y",
        "UNRELATED": "1",
    }
    config = load_config(root=tmp_path, environ=env)
    assert config.backend == "sqlite:///env.db"
    assert config.worker.concurrency == 12
    assert config.worker.queues == ["a", "b", "c"]
    assert config.server.api_token == "tok"
    assert config.flow.step_timeout == 10.0
    assert config.app == ["x", "y"]


def test_explicit_overrides_win_over_env(tmp_path):
    config = load_config(
        root=tmp_path,
        environ={"FLOWTIDE_BACKEND": "sqlite:///env.db"},
        overrides={"backend": "memory://", "worker": {"concurrency": 2}},
    )
    assert (config.backend, config.worker.concurrency) == ("memory://", 2)


def test_process_environment_is_used_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWTIDE_BACKEND", "memory://")
    monkeypatch.setenv("FLOWTIDE_WORKER_CONCURRENCY", "4")
    config = load_config(root=tmp_path)
    assert (config.backend, config.worker.concurrency) == ("memory://", 4)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("colour = 1\n", "colour"),
        ("[worker]\nthreads = 4\n", "worker.threads"),
        ("[server]\nhots = 'x'\n", "server.hots"),
        ("[nonsense]\nx = 1\n", "nonsense"),
    ],
)
def test_unknown_key_in_the_file_is_named(tmp_path, toml, key):
    path = write(tmp_path / "flowtide.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_config(root=tmp_path, environ={})
    message = str(info.value)
    assert f"unknown config key {key}" in message
    assert str(path) in message
    assert "\n" not in message


def test_unknown_key_in_pyproject_is_named(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.flowtide]\nbakend = 'memory://'\n")
    with pytest.raises(ConfigError, match="unknown config key bakend"):
        load_config(root=tmp_path, environ={})


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("FLOWTIDE_BAKEND", "FLOWTIDE_BAKEND"),
        ("FLOWTIDE_WORKER_THREADS", "worker.threads"),
    ],
)
def test_unknown_env_key_is_named(tmp_path, name, named):
    with pytest.raises(ConfigError, match=named):
        load_config(root=tmp_path, environ={name: "1"})


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[worker]\nconcurrency = 'ten'\n", "worker.concurrency"),
        ("[worker]\nqueues = 5\n", "worker.queues"),
        ("[flow]\nstep_timeout = 'soon'\n", "flow.step_timeout"),
        ("[server]\nhost = 1\n", "server.host"),
        ("backend = 5\n", "backend"),
        ("[state]\ncleanup = 'always'\n", "state.cleanup"),
        ("[worker]\nconcurrency = 0\n", "worker.concurrency"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, toml, key):
    write(tmp_path / "flowtide.toml", toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(root=tmp_path, environ={})


def test_invalid_env_value_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"worker\.concurrency"):
        load_config(root=tmp_path, environ={"FLOWTIDE_WORKER_CONCURRENCY": "many"})


def test_invalid_toml_is_reported(tmp_path):
    path = write(tmp_path / "flowtide.toml", "backend = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(root=tmp_path, environ={})
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/db",
        "localhost:6379",
        "",
        "sqlite://",
        "redis://localhost:notaport/0",
        "postgresql://user@host:99999/db",
    ],
)
def test_malformed_backend_url_is_named(tmp_path, url):
    with pytest.raises(ConfigError) as info:
        load_config(root=tmp_path, environ={"FLOWTIDE_BACKEND": url})
    message = str(info.value)
    assert repr(url) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "sqlite:///.flowtide/flowtide.db",
        "sqlite:////abs/path.db",
        "redis://localhost:6379/0",
        "rediss://:pw@host/1",
        "postgresql://user:pw@localhost:5432/db",
        "postgres://localhost/db",
    ],
)
def test_wellformed_backend_urls_are_accepted(tmp_path, url):
    assert load_config(root=tmp_path, environ={"FLOWTIDE_BACKEND": url}).backend == url


def test_stall_timeout_auto(tmp_path):
    write(tmp_path / "flowtide.toml", '[flow]\nstall_timeout = "auto"\n')
    assert load_config(root=tmp_path, environ={}).flow.stall_timeout is None


def test_per_facet_backend_keys_equal_to_the_backend_are_accepted(tmp_path):
    write(tmp_path / "flowtide.toml", 'backend = "memory://"\nqueue = "memory://"\n')
    assert load_config(root=tmp_path, environ={}).backend == "memory://"


def test_a_separate_facet_backend_is_refused_with_the_key_named(tmp_path):
    write(tmp_path / "flowtide.toml", 'queue = "memory://"\n')
    with pytest.raises(ConfigError, match="config key queue"):
        load_config(root=tmp_path, environ={})


def test_runtimes_section_defaults_file_and_env(tmp_path):
    defaults = load_config(root=tmp_path, environ={}).runtimes
    assert (defaults.python_process_pool, defaults.node_pool) == (0, 0)
    assert (defaults.python_process_max_inflight, defaults.node_max_inflight) == (1, 32)
    assert (defaults.max_jobs_per_child, defaults.max_memory_mb) == (None, 512)
    assert defaults.cancel_grace == 1.0
    write(
        tmp_path / "flowtide.toml",
        """
[runtimes]
python_process_pool = 2
node_pool = 3
node_max_inflight = 8
max_jobs_per_child = 500
max_memory_mb = 256
cancel_grace = "250ms"
""",
    )
    config = load_config(root=tmp_path, environ={"FLOWTIDE_RUNTIMES_NODE_POOL": "4"})
    r = config.runtimes
    assert (r.python_process_pool, r.node_pool, r.node_max_inflight) == (2, 4, 8)
    assert (r.max_jobs_per_child, r.max_memory_mb, r.cancel_grace) == (500, 256, 0.25)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[runtimes]\nnode_pool = 'two'\n", "runtimes.node_pool"),
        ("[runtimes]\nnode_max_inflight = 0\n", "runtimes.node_max_inflight"),
        ("[runtimes]\nmax_memory_mb = -1\n", "runtimes.max_memory_mb"),
        ("[runtimes]\ncancel_grace = 'later'\n", "runtimes.cancel_grace"),
        ("[runtimes]\nnode_size = 2\n", "runtimes.node_size"),
    ],
)
def test_invalid_runtimes_values_name_the_key(tmp_path, toml, key):
    write(tmp_path / "flowtide.toml", toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(root=tmp_path, environ={})
