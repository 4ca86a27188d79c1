"""Running the real ``bonsai serve`` process on a free port, for the server tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bonsai.garden import Garden

API_KEY = "bonsai-test-key-1234"
KEY_ENV = "BONSAI_TEST_SERVE_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_garden(root: Path, model_dir: Path) -> Garden:
    garden = Garden.init(root)
    config = garden.config
    config.student.base_model = str(model_dir)
    config.save(garden.config_path)
    garden.close()
    return Garden.open(root)


class ServerProcess:
    """``bonsai serve`` in a subprocess; ``url`` once it answers ``/health``."""

    def __init__(self, garden: Garden, *extra: str, api_key: bool = True) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/v1"
        env = dict(os.environ, BONSAI_EMBED_MODEL="hashing", COLUMNS="200", NO_COLOR="1")
        command = [
            str(Path(sys.executable).with_name("bonsai")),
            "serve", "--garden", str(garden.root), "--port", str(self.port), *extra,
        ]  # fmt: skip
        if api_key:
            env[KEY_ENV] = API_KEY
            command += ["--api-key-env", KEY_ENV]
        self.log = garden.root / f"serve-{self.port}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 180.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the server did not start: {self.log.read_text()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
